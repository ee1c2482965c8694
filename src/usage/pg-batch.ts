// The ledger's PostgreSQL write: one constant statement for any batch — every table's rows passed as
// one array per column and expanded with unnest() — so a commit is one round trip (an implicit
// transaction: all or nothing), the client builds no SQL per batch and the server can reuse its plan.
// The arrays are expanded in the select list (`select unnest($1), unnest($2), …`), where PostgreSQL
// steps them in lockstep one row at a time. `select * from unnest($1, $2, …)` reads the same but
// materializes every array in a tuplestore of its own, each starting with a 16 KiB array: ~1 MiB of
// allocations per commit for these 64 columns, which the server's malloc returned to the kernel and
// faulted back in on every commit (~0.8 ms of its CPU per commit, measured; see the README).
// Tables in one fixed order (records, rollups, daily, spend) with rows sorted by primary key, so
// instances sharing the database take row locks in one order and never deadlock each other.
import type { UsageRecordTable } from '../db/schema.js';
import type { LedgerBatch, SpendDelta } from './ledger-batch.js';
import type { DailyDelta, RollupDelta } from './rollup-batch.js';
import { ROLLUP_SUMS } from './sqlite-batch.js';

type Column<Row> = readonly [name: keyof Row & string, type: 'text' | 'bigint'];

const RECORD_COLUMNS: ReadonlyArray<Column<UsageRecordTable>> = [
  ['id', 'text'],
  ['at', 'bigint'],
  ['endpoint', 'text'],
  ['key_id', 'text'],
  ['user_id', 'text'],
  ['team_id', 'text'],
  ['service_user_id', 'text'],
  ['credential_id', 'text'],
  ['model', 'text'],
  ['input_tokens', 'bigint'],
  ['output_tokens', 'bigint'],
  ['cache_write_5m_tokens', 'bigint'],
  ['cache_write_1h_tokens', 'bigint'],
  ['cache_read_tokens', 'bigint'],
  ['web_search_requests', 'bigint'],
  ['cost_micro', 'bigint'],
  ['saved_micro', 'bigint'],
  ['latency_ms', 'bigint'],
  ['status', 'bigint'],
  ['outcome', 'text'],
  ['upstream_request_id', 'text'],
  ['stream', 'bigint'],
  ['partial', 'bigint'],
  ['estimated', 'bigint'],
  ['attempts', 'bigint'],
];

const SUM_COLUMNS = ROLLUP_SUMS.map((c) => [c, 'bigint'] as const);

const ROLLUP_KEY = ['bucket', 'key_id', 'model', 'credential_id', 'user_id', 'team_id'] as const;
const ROLLUP_COLUMNS: ReadonlyArray<Column<RollupDelta>> = [
  ['bucket', 'bigint'],
  ['key_id', 'text'],
  ['model', 'text'],
  ['credential_id', 'text'],
  ['user_id', 'text'],
  ['team_id', 'text'],
  ...SUM_COLUMNS,
];

const DAILY_KEY = ['day', 'team_id', 'user_id', 'key_id', 'model', 'credential_id'] as const;
const DAILY_COLUMNS: ReadonlyArray<Column<DailyDelta>> = [
  ['day', 'bigint'],
  ['team_id', 'text'],
  ['user_id', 'text'],
  ['key_id', 'text'],
  ['model', 'text'],
  ['credential_id', 'text'],
  ...SUM_COLUMNS,
];

const SPEND_KEY = ['scope_type', 'scope_id', 'period', 'period_start'] as const;
const SPEND_COLUMNS: ReadonlyArray<Column<SpendDelta>> = [
  ['scope_type', 'text'],
  ['scope_id', 'text'],
  ['period', 'text'],
  ['period_start', 'bigint'],
  ['spent_micro', 'bigint'],
];

/** `insert into T (cols) select unnest($n::type[]), …`, numbering parameters from `first`. */
function insertPart<Row>(table: string, columns: ReadonlyArray<Column<Row>>, first: number): string {
  const names = columns.map(([name]) => name).join(', ');
  const arrays = columns.map(([, type], i) => `unnest($${first + i}::${type}[])`).join(', ');
  return `insert into ${table} (${names}) select ${arrays}`;
}

function addOnConflict(table: string, key: readonly string[], sums: readonly string[]): string {
  const set = sums.map((c) => `${c} = ${table}.${c} + excluded.${c}`).join(', ');
  return ` on conflict (${key.join(', ')}) do update set ${set}`;
}

function buildText(): string {
  let n = 1;
  const part = <Row>(table: string, columns: ReadonlyArray<Column<Row>>): string => {
    const text = insertPart(table, columns, n);
    n += columns.length;
    return text;
  };
  const records = part('usage_records', RECORD_COLUMNS);
  const rollups =
    part('usage_rollups', ROLLUP_COLUMNS) + addOnConflict('usage_rollups', ROLLUP_KEY, ROLLUP_SUMS);
  const daily = part('usage_daily', DAILY_COLUMNS) + addOnConflict('usage_daily', DAILY_KEY, ROLLUP_SUMS);
  const spend = part('spend', SPEND_COLUMNS) + addOnConflict('spend', SPEND_KEY, ['spent_micro']);
  return `with r as (${records}), u as (${rollups}), d as (${daily}), s as (${spend}) select 1`;
}

/** The statement's text: the same for every batch. */
export const LEDGER_STATEMENT = buildText();

function columnArrays<Row>(rows: readonly Row[], columns: ReadonlyArray<Column<Row>>): unknown[][] {
  return columns.map(([name]) => rows.map((row) => row[name]));
}

/** One batch's column arrays, in the statement's parameter order, rows in lock order. */
export function ledgerColumns(batch: LedgerBatch): unknown[][] {
  return [
    ...columnArrays(batch.records, RECORD_COLUMNS),
    ...columnArrays([...batch.rollups].sort(compareRollupKeys), ROLLUP_COLUMNS),
    ...columnArrays([...batch.daily].sort(compareDailyKeys), DAILY_COLUMNS),
    ...columnArrays([...batch.spend].sort(compareSpendKeys), SPEND_COLUMNS),
  ];
}

/** The statement's parameters for one batch: each column array as PostgreSQL's array literal. */
export function ledgerParameters(batch: LedgerBatch): string[] {
  return ledgerColumns(batch).map(arrayLiteral);
}

const NEEDS_ESCAPE = /["\\]/;

/**
 * A column's values as a PostgreSQL array literal (`{1,NULL,"text"}`), as node-postgres would write it
 * but cheaper: pg quotes every element, numbers included, and runs two regular-expression replacements
 * on each (~5 µs per record for the ledger's 64 columns, against ~1.4 µs here). Text is always quoted
 * (so `NULL`, commas, braces and spaces stay text) and escaped only when it holds a quote or backslash.
 */
export function arrayLiteral(values: readonly unknown[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    if (v === null || v === undefined) out += 'NULL';
    else if (typeof v === 'number') out += String(v);
    else {
      const text = String(v);
      out += NEEDS_ESCAPE.test(text) ? `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : `"${text}"`;
    }
  }
  return `${out}}`;
}

/** Rows in their table's primary-key order: one lock order for every instance. */
export function compareRollupKeys(a: RollupDelta, b: RollupDelta): number {
  if (a.bucket !== b.bucket) return a.bucket - b.bucket;
  return compareText(a, b, ['key_id', 'model', 'credential_id', 'user_id', 'team_id']);
}

export function compareDailyKeys(a: DailyDelta, b: DailyDelta): number {
  if (a.day !== b.day) return a.day - b.day;
  return compareText(a, b, ['team_id', 'user_id', 'key_id', 'model', 'credential_id']);
}

export function compareSpendKeys(a: SpendDelta, b: SpendDelta): number {
  const byText = compareText(a, b, ['scope_type', 'scope_id', 'period']);
  return byText !== 0 ? byText : a.period_start - b.period_start;
}

function compareText<Row>(a: Row, b: Row, columns: ReadonlyArray<keyof Row>): number {
  for (const c of columns) {
    const x = String(a[c]);
    const y = String(b[c]);
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
