// The SQLite fast path of the ledger: one synchronous BEGIN IMMEDIATE transaction of prepared
// statements per batch. Kysely would build (and SQLite re-prepare) a new multi-row statement for
// every batch size; this costs a few microseconds per row instead. Records, spend, usage rollups and
// daily usage commit together, so the rollups equal the ledger even across kill -9.
import type SQLite from 'better-sqlite3';
import type { LedgerBatch } from './ledger-batch.js';

const USAGE_COLUMNS = [
  'id',
  'at',
  'endpoint',
  'key_id',
  'user_id',
  'team_id',
  'service_user_id',
  'credential_id',
  'model',
  'input_tokens',
  'output_tokens',
  'cache_write_5m_tokens',
  'cache_write_1h_tokens',
  'cache_read_tokens',
  'web_search_requests',
  'cost_micro',
  'saved_micro',
  'latency_ms',
  'status',
  'outcome',
  'upstream_request_id',
  'stream',
  'partial',
  'estimated',
  'attempts',
] as const;

/** The summed columns of a rollup row, in the order after its key columns. */
export const ROLLUP_SUMS = [
  'requests',
  'errors',
  'input_tokens',
  'output_tokens',
  'cache_write_5m_tokens',
  'cache_write_1h_tokens',
  'cache_read_tokens',
  'web_search_requests',
  'cost_micro',
  'saved_micro',
  'estimated',
] as const;

const ROLLUP_COLUMNS = ['bucket', 'key_id', 'model', 'credential_id', 'user_id', 'team_id', ...ROLLUP_SUMS];
const DAILY_COLUMNS = ['day', 'key_id', 'model', 'credential_id', 'user_id', 'team_id', ...ROLLUP_SUMS];

export function createSqliteBatchWriter(sqlite: SQLite.Database) {
  const insertUsage = sqlite.prepare(
    `insert into usage_records (${USAGE_COLUMNS.join(', ')}) values (${USAGE_COLUMNS.map(() => '?').join(', ')})`,
  );
  const upsertSpend = sqlite.prepare(
    `insert into spend (scope_type, scope_id, period, period_start, spent_micro) values (?, ?, ?, ?, ?)
     on conflict (scope_type, scope_id, period, period_start) do update set spent_micro = spent_micro + excluded.spent_micro`,
  );

  const upsertRollup = sqlite.prepare(
    `insert into usage_rollups (${ROLLUP_COLUMNS.join(', ')}) values (${ROLLUP_COLUMNS.map(() => '?').join(', ')})
     on conflict (bucket, key_id, model, credential_id, user_id, team_id) do update set
     ${ROLLUP_SUMS.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`,
  );

  const upsertDaily = sqlite.prepare(
    `insert into usage_daily (${DAILY_COLUMNS.join(', ')}) values (${DAILY_COLUMNS.map(() => '?').join(', ')})
     on conflict (day, team_id, user_id, key_id, model, credential_id) do update set
     ${ROLLUP_SUMS.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`,
  );

  const write = sqlite.transaction((batch: LedgerBatch) => {
    // Positional arguments, in USAGE_COLUMNS order: better-sqlite3 binds them straight from the call
    // (an array argument is read element by element through generic property lookups, named
    // parameters are matched by name).
    for (const r of batch.records) {
      insertUsage.run(
        r.id,
        r.at,
        r.endpoint,
        r.key_id,
        r.user_id,
        r.team_id,
        r.service_user_id,
        r.credential_id,
        r.model,
        r.input_tokens,
        r.output_tokens,
        r.cache_write_5m_tokens,
        r.cache_write_1h_tokens,
        r.cache_read_tokens,
        r.web_search_requests,
        r.cost_micro,
        r.saved_micro,
        r.latency_ms,
        r.status,
        r.outcome,
        r.upstream_request_id,
        r.stream,
        r.partial,
        r.estimated,
        r.attempts,
      );
    }
    for (const s of batch.spend)
      upsertSpend.run(s.scope_type, s.scope_id, s.period, s.period_start, s.spent_micro);
    for (const u of batch.rollups) {
      upsertRollup.run(
        u.bucket,
        u.key_id,
        u.model,
        u.credential_id,
        u.user_id,
        u.team_id,
        u.requests,
        u.errors,
        u.input_tokens,
        u.output_tokens,
        u.cache_write_5m_tokens,
        u.cache_write_1h_tokens,
        u.cache_read_tokens,
        u.web_search_requests,
        u.cost_micro,
        u.saved_micro,
        u.estimated,
      );
    }
    for (const d of batch.daily) {
      upsertDaily.run(
        d.day,
        d.key_id,
        d.model,
        d.credential_id,
        d.user_id,
        d.team_id,
        d.requests,
        d.errors,
        d.input_tokens,
        d.output_tokens,
        d.cache_write_5m_tokens,
        d.cache_write_1h_tokens,
        d.cache_read_tokens,
        d.web_search_requests,
        d.cost_micro,
        d.saved_micro,
        d.estimated,
      );
    }
  });

  return {
    /** False while another transaction holds the shared handle (then the batch must wait a turn). */
    ready: () => !sqlite.inTransaction,
    write: (batch: LedgerBatch) => write.immediate(batch),
  };
}
