// Usage rollups: the Messages ledger summed per 15-minute bucket and per (key, model, credential, user,
// team), kept in the same transaction as the records, so reports read a few rows per bucket instead of
// every request, and stay exact after raw rows are pruned. Rollup key columns are NOT NULL (they are
// the primary key): '' stands for "none" (no team, no model, no credential) and reads back as null.
// SQLite clusters the table by time (WITHOUT ROWID, like the ledger since 0007); PostgreSQL keeps a
// heap table with the same primary key. Existing records are rolled up here, in one statement.
//
// On SQLite the ledger's per-user index goes: reports by user now read the rollups, and only the
// partial buckets at a range's edges (under 15 minutes each) scan raw rows, through the clustered time
// key. Every index is a B-tree page written per commit; the rollup page replaces it, so a commit
// dirties as many pages as before (measured: ledger records/s unchanged, see the bench).
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../connect.js';

// Migrations run against the schema as it was then, so they are not typed against today's tables.
type MigrationDb = Kysely<unknown>;

// The bucket width, fixed here: a later change of the constant in code must not rewrite history.
const ROLLUP_BUCKET_MS = 900_000;

export function usageRollupsMigration(dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await sql`create table usage_rollups (
        bucket bigint not null,
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
        primary key (bucket, key_id, model, credential_id, user_id, team_id)
      )${sql.raw(dialect === 'sqlite' ? ' without rowid' : '')}`.execute(db);
      const bucket = sql`(at / ${sql.lit(ROLLUP_BUCKET_MS)}) * ${sql.lit(ROLLUP_BUCKET_MS)}`;
      await sql`insert into usage_rollups (bucket, key_id, model, credential_id, user_id, team_id,
          requests, errors, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens,
          cache_read_tokens, web_search_requests, cost_micro, saved_micro, estimated)
        select ${bucket}, key_id, coalesce(model, ''), coalesce(credential_id, ''), user_id,
          coalesce(team_id, ''),
          sum(case when status >= 200 and status < 300 then 1 else 0 end),
          sum(case when status >= 200 and status < 300 then 0 else 1 end),
          sum(input_tokens), sum(output_tokens), sum(cache_write_5m_tokens), sum(cache_write_1h_tokens),
          sum(cache_read_tokens), sum(web_search_requests), sum(cost_micro), sum(saved_micro),
          sum(estimated)
        from usage_records
        where endpoint = 'messages'
        group by ${bucket}, key_id, coalesce(model, ''), coalesce(credential_id, ''), user_id,
          coalesce(team_id, '')`.execute(db);
      if (dialect === 'sqlite') await sql`drop index if exists usage_user_at`.execute(db);
    },
  };
}
