// Spend is kept per UTC day only (months and all-time are sums of days); drop the redundant rows.
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../connect.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations run against the schema as it was then, untyped by design
type AnyDb = Kysely<any>;

export function dailySpendMigration(_dialect: Dialect) {
  return {
    async up(db: AnyDb): Promise<void> {
      await sql`delete from spend where period <> 'day'`.execute(db);
    },
  };
}
