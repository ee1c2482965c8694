// Credential rotation with a grace period: the previous secret lives on in its own row until retire_at.
import type { Kysely } from 'kysely';
import type { Dialect } from '../connect.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations run against the schema as it was then, untyped by design
type AnyDb = Kysely<any>;

export function credentialRetireMigration(_dialect: Dialect) {
  return {
    async up(db: AnyDb): Promise<void> {
      await db.schema.alterTable('credentials').addColumn('retire_at', 'bigint').execute();
      await db.schema.alterTable('credentials').addColumn('retired_from', 'text').execute();
    },
  };
}
