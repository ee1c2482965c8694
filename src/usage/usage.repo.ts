// Usage sums over the ledger for any [since, until): whole days of the reporting timezone come from the
// daily usage table (when it is cut in that zone), the other whole 15-minute buckets from the usage
// rollups, the partial buckets at the two edges from the raw records (at most 2 × 15 minutes of rows,
// read through the time index), merged in one statement. `summarise` groups them by model, user, key,
// team, credential or day, days being cut in the reporting timezone.
import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../db/connect.js';
import { formatUsd } from '../lib/money.js';
import { dayLabel, dayStartOf, dayStarts } from '../lib/timezone.js';
import { dailyTimeZone } from './daily-rollups.js';
import { RAW_HORIZON_META } from './retention.js';
import { bucketOf, ROLLUP_BUCKET_MS } from './rollup-batch.js';
import { ROLLUP_SUMS } from './sqlite-batch.js';

const HOUR = 3_600_000;

export const GROUPS = ['model', 'user', 'key', 'team', 'credential', 'day'] as const;
export type Group = (typeof GROUPS)[number];

/** What usage can be grouped by in `sumUsage`: an id dimension, or the 15-minute bucket's start. */
export const DIMENSIONS = ['user', 'key', 'team', 'model', 'credential', 'bucket'] as const;
export type Dimension = (typeof DIMENSIONS)[number];
type IdDimension = Exclude<Dimension, 'bucket'>;

export interface SumFilter {
  userId?: string;
  teamId?: string;
  keyId?: string;
  model?: string;
  credentialId?: string;
}

export interface SumQuery {
  since: number;
  until: number;
  filter?: SumFilter;
  groupBy: readonly Dimension[];
  /** The reporting timezone of the caller's days: lets whole days come from the daily table. */
  timeZone?: string;
}

export type SumName = (typeof ROLLUP_SUMS)[number];
export type UsageSums = Record<SumName, number>;

/** One group: the ids it was grouped by (null = none), the bucket start when grouped by bucket, the sums. */
export type SumRow<S extends SumName = SumName> = Record<S, number> &
  Partial<Record<IdDimension, string | null>> & { bucket?: number };

export interface UsageFilter extends SumFilter {
  since: number;
  until: number;
}

export interface UsageRow {
  /** The group's value: a model id, a user/team/credential name, a key id or a YYYY-MM-DD day. */
  group: string | null;
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  cache_read_tokens: number;
  web_search_requests: number;
  cost_micro_usd: number;
  cost_usd: string;
  saved_micro_usd: number;
  estimated_requests: number;
}

const COLUMN: Record<IdDimension, 'model' | 'user_id' | 'key_id' | 'team_id' | 'credential_id'> = {
  model: 'model',
  user: 'user_id',
  key: 'key_id',
  team: 'team_id',
  credential: 'credential_id',
};

const FILTER: Record<keyof SumFilter, IdDimension> = {
  userId: 'user',
  teamId: 'team',
  keyId: 'key',
  model: 'model',
  credentialId: 'credential',
};

/**
 * Sums the Messages usage in [since, until), exactly, per combination of `groupBy` (unordered), in ONE
 * statement (one snapshot): when `timeZone` is the zone the daily usage table is cut in, the whole days
 * of that zone inside the range come from usage_daily; the rest of the whole 15-minute buckets from
 * usage_rollups; the partial buckets at the edges from usage_records. Another zone (or none) reads no
 * daily rows: exact, slower on long ranges.
 *
 * With 'bucket' in groupBy, a part read from usage_daily answers `bucket` = its day's start, not a
 * 15-minute bucket: callers only fold buckets into days of that same zone (`foldDays` here,
 * src/usage/overview.ts), which leaves the answer unchanged.
 */
export function sumUsage(db: Db, query: SumQuery): Promise<SumRow[]>;
/** The same, summing only `sums` (each sum is a column every row of the range is read for). */
export function sumUsage<S extends SumName>(
  db: Db,
  query: SumQuery,
  sums: readonly [S, ...S[]],
): Promise<Array<SumRow<S>>>;
export async function sumUsage(
  db: Db,
  query: SumQuery,
  sums: readonly SumName[] = ROLLUP_SUMS,
): Promise<Array<SumRow<SumName>>> {
  const { since, until, groupBy } = query;
  const filter = query.filter ?? {};
  if (until <= since) return [];
  const first = Math.ceil(since / ROLLUP_BUCKET_MS) * ROLLUP_BUCKET_MS;
  const last = Math.floor(until / ROLLUP_BUCKET_MS) * ROLLUP_BUCKET_MS;
  const parts: RawBuilder<unknown>[] = [];
  if (first < last) {
    const days = query.timeZone ? await wholeDays(db, first, last, query.timeZone) : null;
    if (days) {
      parts.push(sumPart(db, 'daily', days.from, days.to, filter, groupBy, sums));
      if (first < days.from) parts.push(sumPart(db, 'rollup', first, days.from, filter, groupBy, sums));
      if (days.to < last) parts.push(sumPart(db, 'rollup', days.to, last, filter, groupBy, sums));
    } else {
      parts.push(sumPart(db, 'rollup', first, last, filter, groupBy, sums));
    }
  }
  for (const [from, to] of edgeSegments(since, until, first, last)) {
    // A partial bucket: its raw rows, or — when retention pruned them (the bucket lies below the raw
    // horizon, read in this same statement) — its rollup, whole. Never half-deleted raw rows.
    const bucket = bucketOf(from);
    parts.push(sumPart(db, 'raw', from, to, filter, groupBy, sums, sql`${bucket} >= ${RAW_HORIZON}`));
    parts.push(
      sumPart(
        db,
        'rollup',
        bucket,
        bucket + ROLLUP_BUCKET_MS,
        filter,
        groupBy,
        sums,
        sql`${bucket} < ${RAW_HORIZON}`,
      ),
    );
  }
  const groups = groupBy.map((_, i) => sql.ref(`g${i}`));
  const select = [...groups, ...sums.map((c) => sql`sum(${sql.ref(c)}) as ${sql.ref(c)}`)];
  const result = await sql<Record<string, unknown>>`select ${sql.join(select)}
    from (${sql.join(parts, sql` union all `)}) as parts
    ${groups.length > 0 ? sql`group by ${sql.join(groups)}` : sql``}`.execute(db.kysely);
  const rows: SumRow[] = [];
  const probe = sums[0] ?? 'requests';
  for (const r of result.rows) {
    // Without a group, an empty range still answers one row of nulls.
    if (r[probe] === null || r[probe] === undefined) continue;
    const row = {} as SumRow;
    groupBy.forEach((d, i) => {
      const value = r[`g${i}`];
      if (d === 'bucket') row.bucket = Number(value);
      // '' is the rollups' "none" (the ledger's null, read as '' in the raw part so the two merge).
      else row[d] = value === null || value === '' ? null : String(value);
    });
    for (const c of sums) row[c] = Number(r[c]);
    rows.push(row);
  }
  return rows;
}

/** The raw horizon (usage retention): quarter hours before it may have lost their raw rows. */
const RAW_HORIZON = sql`coalesce((select cast(value as bigint) from meta where key = ${sql.lit(RAW_HORIZON_META)}), 0)`;

/**
 * The parts of [since, until) that are not whole buckets, each inside one bucket: the two edges when
 * whole buckets lie between them ([first, last)), else the range cut at the one boundary inside it.
 */
function edgeSegments(since: number, until: number, first: number, last: number): Array<[number, number]> {
  if (first < last)
    return (
      [
        [since, first],
        [last, until],
      ] as Array<[number, number]>
    ).filter(([a, b]) => a < b);
  return first > since && first < until
    ? [
        [since, first],
        [first, until],
      ]
    : [[since, until]];
}

/**
 * The whole days of `timeZone` inside [first, last) (15-minute boundaries), as [from, to) — when the
 * daily table is cut in that zone and there is at least one such day; else null.
 */
async function wholeDays(
  db: Db,
  first: number,
  last: number,
  timeZone: string,
): Promise<{ from: number; to: number } | null> {
  const startOfFirst = dayStartOf(first, timeZone);
  const from = startOfFirst === first ? first : dayStartOf(startOfFirst + 36 * HOUR, timeZone);
  const to = dayStartOf(last, timeZone);
  if (from >= to) return null;
  // A day that does not start on a bucket boundary (no real zone today) would not fold exactly.
  if (from % ROLLUP_BUCKET_MS !== 0 || to % ROLLUP_BUCKET_MS !== 0) return null;
  if ((await dailyTimeZone(db)) !== timeZone) return null;
  return { from, to };
}

/** One part of the sum, as a subquery: `g0…gn` (ids as text, '' for none) and the sums. */
function sumPart(
  db: Db,
  source: 'daily' | 'rollup' | 'raw',
  from: number,
  to: number,
  filter: SumFilter,
  groupBy: readonly Dimension[],
  wanted: readonly SumName[],
  only?: RawBuilder<unknown>,
): RawBuilder<unknown> {
  const raw = source === 'raw';
  const time = source === 'daily' ? 'day' : raw ? 'at' : 'bucket';
  const dims = groupBy.map((d) => {
    if (d === 'bucket')
      return raw ? sql`(at / ${sql.lit(ROLLUP_BUCKET_MS)}) * ${sql.lit(ROLLUP_BUCKET_MS)}` : sql.ref(time);
    return raw ? sql`coalesce(${sql.ref(COLUMN[d])}, '')` : sql.ref(COLUMN[d]);
  });
  const sums = wanted.map((c) => {
    if (raw && c === 'requests')
      return sql`sum(case when status >= 200 and status < 300 then 1 else 0 end) as requests`;
    if (raw && c === 'errors')
      return sql`sum(case when status >= 200 and status < 300 then 0 else 1 end) as errors`;
    return sql`sum(${sql.ref(c)}) as ${sql.ref(c)}`;
  });
  // Only SQLite aggregates by sorting; PostgreSQL hashes, and finer groups would only be more of them.
  const grouping = source === 'daily' && db.dialect === 'sqlite' ? (dailyRun(groupBy) ?? dims) : dims;
  const where: RawBuilder<unknown>[] = [sql`${sql.ref(time)} >= ${from}`, sql`${sql.ref(time)} < ${to}`];
  if (raw) where.unshift(sql`endpoint = 'messages'`);
  if (only) where.push(only);
  for (const [name, dim] of Object.entries(FILTER) as Array<[keyof SumFilter, IdDimension]>) {
    const value = filter[name];
    if (value !== undefined) where.push(sql`${sql.ref(COLUMN[dim])} = ${value}`);
  }
  const table = source === 'daily' ? 'usage_daily' : raw ? 'usage_records' : 'usage_rollups';
  const select = [...dims.map((d, i) => sql`${d} as ${sql.ref(`g${i}`)}`), ...sums];
  // SQLite wants a compound's parts bare; PostgreSQL takes them in parentheses either way.
  const body = sql`select ${sql.join(select)}
    from ${sql.table(table)}
    where ${sql.join(where, sql` and `)}
    ${grouping.length > 0 ? sql`group by ${sql.join(grouping)}` : sql``}`;
  return db.dialect === 'postgres' ? sql`(${body})` : body;
}

/** usage_daily's clustered order after the day (migration 0014's primary key). */
const DAILY_RUN: readonly IdDimension[] = ['team', 'user', 'key'];

/**
 * How the daily part groups on SQLite when every id asked for is among team, user and key: by the shortest
 * prefix of (day, team, user, key) holding them. Each such group is a run of the clustered order, which
 * SQLite sums as it reads instead of sorting every row of the range; the groups are finer than asked
 * (per day, and per user within a team…), and the outer query folds them into what was asked. Null
 * when another id (model, credential) is asked for, or nothing is.
 */
function dailyRun(groupBy: readonly Dimension[]): RawBuilder<unknown>[] | null {
  let depth = 0;
  for (const d of groupBy) {
    if (d === 'bucket') continue;
    const at = DAILY_RUN.indexOf(d);
    if (at < 0) return null;
    depth = Math.max(depth, at + 1);
  }
  if (groupBy.length === 0) return null;
  return [sql.ref('day'), ...DAILY_RUN.slice(0, depth).map((d) => sql.ref(COLUMN[d]))];
}

/** Sums the Messages usage in [since, until) per group; days are cut in `timeZone` (IANA, default UTC). */
export async function summarise(
  db: Db,
  by: Group,
  filter: UsageFilter,
  timeZone = 'UTC',
): Promise<UsageRow[]> {
  const { since, until, ...ids } = filter;
  if (by === 'day') {
    const buckets = await sumUsage(db, { since, until, filter: ids, groupBy: ['bucket'], timeZone });
    return foldDays(buckets, dayStarts(since, until, timeZone), timeZone).map(({ day, sums }) =>
      usageRow(day, sums),
    );
  }
  const rows = await sumUsage(db, { since, until, filter: ids, groupBy: [by], timeZone });
  const nullsFirst = db.dialect === 'sqlite';
  rows.sort((a, b) => compareIds(a[by] ?? null, b[by] ?? null, nullsFirst));
  const names = await labels(
    db,
    by,
    rows.map((r) => r[by] ?? null),
  );
  return rows.map((r) => {
    const id = r[by] ?? null;
    return usageRow(id === null ? null : (names.get(id) ?? id), r);
  });
}

/** Buckets folded into the days that hold them (days as their starts, ascending), days without usage left out. */
function foldDays(
  buckets: SumRow[],
  starts: number[],
  timeZone: string,
): Array<{ day: string; sums: UsageSums }> {
  buckets.sort((a, b) => (a.bucket ?? 0) - (b.bucket ?? 0));
  const days: Array<{ day: string; sums: UsageSums }> = [];
  let i = 0;
  let current: { start: number; sums: UsageSums } | null = null;
  for (const b of buckets) {
    const at = b.bucket ?? 0;
    while (i + 1 < starts.length && (starts[i + 1] ?? 0) <= at) i++;
    const start = starts[i] ?? at;
    if (current === null || current.start !== start) {
      current = { start, sums: zeroSums() };
      days.push({ day: dayLabel(start, timeZone), sums: current.sums });
    }
    addSums(current.sums, b);
  }
  return days;
}

/** Every sum at zero. */
export function zeroSums(): UsageSums {
  return Object.fromEntries(ROLLUP_SUMS.map((c) => [c, 0])) as UsageSums;
}

/** Adds `row`'s sums into `into`. */
export function addSums(into: UsageSums, row: UsageSums): void {
  for (const c of ROLLUP_SUMS) into[c] += row[c];
}

/** The order the ledger query gave: by id, null first on SQLite and last on PostgreSQL. */
function compareIds(a: string | null, b: string | null, nullsFirst: boolean): number {
  if (a === b) return 0;
  if (a === null) return nullsFirst ? -1 : 1;
  if (b === null) return nullsFirst ? 1 : -1;
  return a < b ? -1 : 1;
}

/** One row of `usage --json`: the sums under their public names. */
export function usageRow(group: string | null, s: UsageSums): UsageRow {
  return {
    group,
    requests: s.requests,
    errors: s.errors,
    input_tokens: s.input_tokens,
    output_tokens: s.output_tokens,
    cache_write_5m_tokens: s.cache_write_5m_tokens,
    cache_write_1h_tokens: s.cache_write_1h_tokens,
    cache_read_tokens: s.cache_read_tokens,
    web_search_requests: s.web_search_requests,
    cost_micro_usd: s.cost_micro,
    cost_usd: formatUsd(s.cost_micro),
    saved_micro_usd: s.saved_micro,
    estimated_requests: s.estimated,
  };
}

/** Names for user, team and credential ids (keys are shown by id, models and days as they are). */
async function labels(db: Db, by: Group, ids: Array<string | null>): Promise<Map<string, string>> {
  const wanted = ids.filter((x): x is string => x !== null);
  if (wanted.length === 0 || (by !== 'user' && by !== 'team' && by !== 'credential')) return new Map();
  const table = by === 'user' ? 'users' : by === 'team' ? 'teams' : 'credentials';
  const rows = await db.kysely.selectFrom(table).select(['id', 'name']).where('id', 'in', wanted).execute();
  return new Map(rows.map((r) => [r.id, r.name]));
}
