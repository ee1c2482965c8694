// Fewer indexes on the ledger: every index is another B-tree page written per usage row. Queries by
// time and by user keep theirs; the rarer filters by key or team scan the time range instead.
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../connect.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations run against the schema as it was then, untyped by design
type AnyDb = Kysely<any>;

export function leanUsageIndexesMigration(_dialect: Dialect) {
  return {
    async up(db: AnyDb): Promise<void> {
      await sql`drop index if exists usage_key_at`.execute(db);
      await sql`drop index if exists usage_team_at`.execute(db);
    },
  };
}
