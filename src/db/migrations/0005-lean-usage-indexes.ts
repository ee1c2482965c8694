// Fewer indexes on the ledger: every index is another B-tree page written per usage row. Queries by
// time and by user keep theirs; the rarer filters by key or team scan the time range instead.
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../connect.js';

// Migrations run against the schema as it was then, so they are not typed against today's tables.
type MigrationDb = Kysely<unknown>;

export function leanUsageIndexesMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await sql`drop index if exists usage_key_at`.execute(db);
      await sql`drop index if exists usage_team_at`.execute(db);
    },
  };
}
