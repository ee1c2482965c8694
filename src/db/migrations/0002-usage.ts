// The usage ledger (one row per upstream call) and per-scope spend counters per budget period.
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../connect.js';

// Migrations run against the schema as it was then, so they are not typed against today's tables.
type MigrationDb = Kysely<unknown>;

export function usageMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema
        .createTable('usage_records')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('endpoint', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('team_id', 'text')
        .addColumn('service_user_id', 'text')
        .addColumn('credential_id', 'text')
        .addColumn('model', 'text')
        .addColumn('input_tokens', 'bigint', (c) => c.notNull())
        .addColumn('output_tokens', 'bigint', (c) => c.notNull())
        .addColumn('cache_write_5m_tokens', 'bigint', (c) => c.notNull())
        .addColumn('cache_write_1h_tokens', 'bigint', (c) => c.notNull())
        .addColumn('cache_read_tokens', 'bigint', (c) => c.notNull())
        .addColumn('web_search_requests', 'bigint', (c) => c.notNull())
        .addColumn('cost_micro', 'bigint', (c) => c.notNull())
        .addColumn('saved_micro', 'bigint', (c) => c.notNull())
        .addColumn('latency_ms', 'integer', (c) => c.notNull())
        .addColumn('status', 'integer', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('upstream_request_id', 'text')
        .addColumn('stream', 'integer', (c) => c.notNull())
        .addColumn('partial', 'integer', (c) => c.notNull())
        .addColumn('estimated', 'integer', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .execute();
      await sql`create index usage_at on usage_records (at)`.execute(db);
      await sql`create index usage_key_at on usage_records (key_id, at)`.execute(db);
      await sql`create index usage_user_at on usage_records (user_id, at)`.execute(db);
      await sql`create index usage_team_at on usage_records (team_id, at)`.execute(db);

      // Settled spend per scope and period, updated in the same transaction as the usage rows, so a
      // restart (or another instance) knows what was spent without scanning the ledger.
      await db.schema
        .createTable('spend')
        .addColumn('scope_type', 'text', (c) => c.notNull())
        .addColumn('scope_id', 'text', (c) => c.notNull())
        .addColumn('period', 'text', (c) => c.notNull())
        .addColumn('period_start', 'bigint', (c) => c.notNull())
        .addColumn('spent_micro', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('spend_pk', ['scope_type', 'scope_id', 'period', 'period_start'])
        .execute();
    },
  };
}
