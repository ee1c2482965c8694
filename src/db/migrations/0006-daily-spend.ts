// Spend is kept per UTC day only (months and all-time are sums of days); drop the redundant rows.
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../connect.js';

// Migrations run against the schema as it was then, so they are not typed against today's tables.
type MigrationDb = Kysely<unknown>;

export function dailySpendMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await sql`delete from spend where period <> 'day'`.execute(db);
    },
  };
}
