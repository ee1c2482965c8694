// Daily usage: the 15-minute rollups summed per day of the reporting timezone, so a month's report
// reads ~30 rows per rollup key instead of ~2,900 buckets. Which zone the days are cut in lives in meta
// (`usage_daily_timezone`); the zone comes from the configuration, unknown here, so the table starts
// empty and without that meta row: `ensureDailyRollups` (src/usage/daily-rollups.ts) fills it when
// `tollgate serve` starts, and reads use it only when the stored zone is the one asked for.
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../connect.js';

// Migrations run against the schema as it was then, so they are not typed against today's tables.
type MigrationDb = Kysely<unknown>;

export function dailyUsageMigration(dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await sql`create table usage_daily (
        day bigint not null,
        key_id text not null,
        model text not null,
        credential_id text not null,
        user_id text not null,
        team_id text not null,
        requests bigint not null,
        errors bigint not null,
        input_tokens bigint not null,
        output_tokens bigint not null,
        cache_write_5m_tokens bigint not null,
        cache_write_1h_tokens bigint not null,
        cache_read_tokens bigint not null,
        web_search_requests bigint not null,
        cost_micro bigint not null,
        saved_micro bigint not null,
        estimated bigint not null,
        primary key (day, key_id, model, credential_id, user_id, team_id)
      )${sql.raw(dialect === 'sqlite' ? ' without rowid' : '')}`.execute(db);
    },
  };
}
