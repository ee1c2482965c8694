// Credential rotation with a grace period: the previous secret lives on in its own row until retire_at.
import type { Kysely } from 'kysely';
import type { Dialect } from '../connect.js';

// Migrations run against the schema as it was then, so they are not typed against today's tables.
type MigrationDb = Kysely<unknown>;

export function credentialRetireMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema.alterTable('credentials').addColumn('retire_at', 'bigint').execute();
      await db.schema.alterTable('credentials').addColumn('retired_from', 'text').execute();
    },
  };
}
