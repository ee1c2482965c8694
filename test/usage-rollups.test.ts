// Usage rollups are exact: records written through the real ledger (SQLite, and PostgreSQL when
// TOLLGATE_TEST_DATABASE_URL is set) are summed for random ranges, groups, filters and timezones by the
// rollup-backed `summarise`, and compared with the ledger scan it replaced (kept here as the oracle) —
// with the daily table cut in one zone (queries in that zone read it, others fall back), then rebuilt
// in another zone after more writes. `sumUsage` is checked the same way for several dimensions at once
// and a subset of the sums, as the overview calls it.
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../src/db/connect.js';
import { migrateToLatest } from '../src/db/migrate.js';
import type { UsageRecordTable } from '../src/db/schema.js';
import { dayLabel } from '../src/lib/timezone.js';
import { ensureDailyRollups } from '../src/usage/daily-rollups.js';
import { createLedger } from '../src/usage/ledger.js';
import { ROLLUP_SUMS } from '../src/usage/sqlite-batch.js';
import {
  DIMENSIONS,
  type Dimension,
  GROUPS,
  type Group,
  type SumName,
  summarise,
  sumUsage,
  type UsageFilter,
  type UsageRow,
} from '../src/usage/usage.repo.js';
import { databaseTargets } from './helpers/databases.js';

const BASE = Date.UTC(2026, 2, 7, 0, 0); // two days before New York's spring DST change
const QUARTER = 900_000;
const SUMS = `sum(case when status >= 200 and status < 300 then 1 else 0 end) as requests,
  sum(case when status >= 200 and status < 300 then 0 else 1 end) as errors,
  sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
  sum(cache_write_5m_tokens) as cache_write_5m_tokens, sum(cache_write_1h_tokens) as cache_write_1h_tokens,
  sum(cache_read_tokens) as cache_read_tokens, sum(web_search_requests) as web_search_requests,
  sum(cost_micro) as cost_micro, sum(saved_micro) as saved_micro, sum(estimated) as estimated`;
const COLUMN: Record<Exclude<Group, 'day'>, string> = {
  model: 'model',
  user: 'user_id',
  key: 'key_id',
  team: 'team_id',
  credential: 'credential_id',
};

type Sums = Omit<UsageRow, 'group' | 'cost_usd'>;

function sumsOf(r: Record<string, unknown>): Sums {
  return {
    requests: Number(r.requests),
    errors: Number(r.errors),
    input_tokens: Number(r.input_tokens),
    output_tokens: Number(r.output_tokens),
    cache_write_5m_tokens: Number(r.cache_write_5m_tokens),
    cache_write_1h_tokens: Number(r.cache_write_1h_tokens),
    cache_read_tokens: Number(r.cache_read_tokens),
    web_search_requests: Number(r.web_search_requests),
    cost_micro_usd: Number(r.cost_micro),
    saved_micro_usd: Number(r.saved_micro),
    estimated_requests: Number(r.estimated),
  };
}

/** The ledger scan `summarise` used before the rollups: every Messages row in the range, grouped. */
async function oracle(
  db: Db,
  by: Group,
  f: UsageFilter,
  timeZone: string,
): Promise<Array<Sums & { group: string | null }>> {
  const where = [sql`endpoint = 'messages'`, sql`at >= ${f.since}`, sql`at < ${f.until}`];
  if (f.userId) where.push(sql`user_id = ${f.userId}`);
  if (f.teamId) where.push(sql`team_id = ${f.teamId}`);
  if (f.keyId) where.push(sql`key_id = ${f.keyId}`);
  if (f.model) where.push(sql`model = ${f.model}`);
  if (f.credentialId) where.push(sql`credential_id = ${f.credentialId}`);
  const grp = by === 'day' ? sql.ref('at') : sql.ref(COLUMN[by]);
  const rows = (
    await sql<Record<string, unknown>>`select ${grp} as grp, ${sql.raw(SUMS)} from usage_records
      where ${sql.join(where, sql` and `)} group by ${grp}`.execute(db.kysely)
  ).rows;
  const groups = new Map<string | null, Sums>();
  for (const r of rows) {
    const g = r.grp === null ? null : by === 'day' ? dayLabel(Number(r.grp), timeZone) : String(r.grp);
    const s = sumsOf(r);
    const seen = groups.get(g);
    if (!seen) groups.set(g, s);
    else for (const k of Object.keys(s) as Array<keyof Sums>) seen[k] += s[k];
  }
  return [...groups].map(([group, s]) => ({ group, ...s }));
}

const byGroup = (a: { group: string | null }, b: { group: string | null }) =>
  (a.group ?? '') < (b.group ?? '') ? -1 : (a.group ?? '') > (b.group ?? '') ? 1 : 0;

const recordArb = fc.record({
  key: fc.constantFrom('key_a', 'key_b', 'key_c'),
  user: fc.constantFrom('usr_a', 'usr_b'),
  team: fc.constantFrom('team_a', 'team_b', null),
  model: fc.constantFrom('claude-haiku-4-5', 'claude-sonnet-4-5', null),
  credential: fc.constantFrom('cred_a', 'cred_b', null),
  endpoint: fc.constantFrom('messages', 'messages', 'messages', 'count_tokens'),
  status: fc.constantFrom(200, 200, 201, 429, 500, 529),
  // On a bucket boundary (±1 ms) or anywhere in three days.
  at: fc.oneof(
    fc
      .tuple(fc.integer({ min: 0, max: 288 }), fc.constantFrom(-1, 0, 1))
      .map(([q, d]) => BASE + q * QUARTER + d),
    fc.integer({ min: 0, max: 3 * 86_400_000 }).map((ms) => BASE + ms),
  ),
  tokens: fc.integer({ min: 0, max: 5000 }),
  cost: fc.integer({ min: 0, max: 90_000 }),
  estimated: fc.constantFrom(0, 0, 1),
});

let seq = 0;
interface Generated {
  key: string;
  user: string;
  team: string | null;
  model: string | null;
  credential: string | null;
  endpoint: string;
  status: number;
  at: number;
  tokens: number;
  cost: number;
  estimated: number;
}

function toRecord(r: Generated): UsageRecordTable {
  seq++;
  return {
    id: `req_${seq}`,
    at: r.at,
    endpoint: r.endpoint as UsageRecordTable['endpoint'],
    key_id: r.key,
    user_id: r.user,
    team_id: r.team,
    service_user_id: null,
    credential_id: r.credential,
    model: r.model,
    input_tokens: r.tokens,
    output_tokens: r.tokens % 97,
    cache_write_5m_tokens: r.tokens % 13,
    cache_write_1h_tokens: r.tokens % 7,
    cache_read_tokens: r.tokens % 31,
    web_search_requests: r.tokens % 3,
    cost_micro: r.cost,
    saved_micro: r.cost % 101,
    latency_ms: 5,
    status: r.status,
    outcome: r.status < 300 ? 'ok' : 'upstream_error',
    upstream_request_id: null,
    stream: 0,
    partial: 0,
    estimated: r.estimated,
    attempts: 1,
  };
}

// A range edge: anywhere, on a bucket boundary, or next to a record (resolved against the records).
const edge = fc.oneof(
  fc.integer({ min: -86_400_000, max: 4 * 86_400_000 }).map((ms) => () => BASE + ms),
  fc.integer({ min: 0, max: 288 }).map((q) => () => BASE + q * QUARTER),
  fc.tuple(fc.nat(), fc.constantFrom(-1, 0, 1, -300_000, 300_000)).map(
    ([i, d]) =>
      (ats: number[]) =>
        (ats[i % Math.max(1, ats.length)] ?? BASE) + d,
  ),
);
const ZONES = ['UTC', 'Asia/Kathmandu', 'America/New_York', 'Australia/Lord_Howe'] as const;
const queryArb = fc.record({
  a: edge,
  b: edge,
  by: fc.constantFrom(...GROUPS),
  // null: the zone the daily table is cut in at the time (so about half the queries read it).
  timeZone: fc.constantFrom(null, null, null, ...ZONES),
  // No filter half the time; else one or two of them (more would match almost nothing).
  filter: fc.oneof(
    fc.constant({}),
    fc.constant({}),
    fc.constantFrom('usr_a', 'usr_b').map((userId) => ({ userId })),
    fc.constantFrom('team_a', 'team_b').map((teamId) => ({ teamId })),
    fc.constantFrom('key_a', 'key_c').map((keyId) => ({ keyId })),
    fc.constantFrom('claude-haiku-4-5', 'claude-sonnet-4-5').map((model) => ({ model })),
    fc.constantFrom('cred_a', 'cred_b').map((credentialId) => ({ credentialId })),
    fc.constant({ userId: 'usr_a', model: 'claude-haiku-4-5' }),
  ),
});

type Query = typeof queryArb extends fc.Arbitrary<infer Q> ? Q : never;

// `sumUsage` itself, as the overview calls it: several dimensions at once, some of the sums only.
const multiArb = fc.record({
  a: edge,
  b: edge,
  groupBy: fc.shuffledSubarray([...DIMENSIONS], { maxLength: 3 }),
  sums: fc.shuffledSubarray([...ROLLUP_SUMS], { minLength: 1 }),
  timeZone: fc.constantFrom(null, null, ...ZONES),
});

type MultiQuery = typeof multiArb extends fc.Arbitrary<infer Q> ? Q : never;

/** The groups of `sumUsage` as strings (buckets folded into their days, as every caller does). */
function multiGroups(
  rows: ReadonlyArray<Record<string, unknown>>,
  q: MultiQuery,
  timeZone: string,
  at: (row: Record<string, unknown>) => number,
  id: (row: Record<string, unknown>, d: Exclude<Dimension, 'bucket'>) => unknown,
  sum: (row: Record<string, unknown>, c: SumName) => number,
): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const row of rows) {
    const group = JSON.stringify(
      q.groupBy.map((d) => (d === 'bucket' ? dayLabel(at(row), timeZone) : (id(row, d) ?? null))),
    );
    const into = out.get(group) ?? Object.fromEntries(q.sums.map((c) => [c, 0]));
    for (const c of q.sums) into[c] = (into[c] ?? 0) + sum(row, c);
    out.set(group, into);
  }
  return out;
}

const ROLLED_SUMS = `sum(requests) as requests, sum(errors) as errors,
  sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
  sum(cache_write_5m_tokens) as cache_write_5m_tokens, sum(cache_write_1h_tokens) as cache_write_1h_tokens,
  sum(cache_read_tokens) as cache_read_tokens, sum(web_search_requests) as web_search_requests,
  sum(cost_micro) as cost_micro, sum(saved_micro) as saved_micro, sum(estimated) as estimated`;

const targets = databaseTargets();

describe.each(targets)('usage rollups on $name', (target) => {
  let db: Db;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ db, close } = await target.open());
    await migrateToLatest(db);
  });
  afterAll(() => close());

  /** Each inner array is appended in one turn: one commit (or several), upserting the same rollup rows. */
  async function write(ledger: ReturnType<typeof createLedger>, batches: Generated[][]): Promise<void> {
    for (const batch of batches) await Promise.all(batch.map((r) => ledger.append(toRecord(r))));
    await ledger.close();
  }

  async function check(queries: Query[], ats: number[], dailyZone: string): Promise<void> {
    for (const q of queries) {
      const a = q.a(ats);
      const b = q.b(ats);
      const timeZone = q.timeZone ?? dailyZone;
      const filter: UsageFilter = { since: Math.min(a, b), until: Math.max(a, b), ...q.filter };
      const got = await summarise(db, q.by, filter, timeZone);
      const want = await oracle(db, q.by, filter, timeZone);
      const plain = got.map(({ cost_usd: _c, ...rest }) => rest);
      if (db.dialect === 'sqlite' || q.by === 'day') expect(plain).toEqual(want.sort(byGroup));
      else expect(plain.sort(byGroup)).toEqual(want.sort(byGroup));
    }
  }

  async function checkMulti(queries: MultiQuery[], ats: number[], dailyZone: string): Promise<void> {
    for (const q of queries) {
      const [since, until] = [q.a(ats), q.b(ats)].sort((x, y) => x - y) as [number, number];
      const timeZone = q.timeZone ?? dailyZone;
      const [first, ...rest] = q.sums as [SumName, ...SumName[]];
      const got = await sumUsage(db, { since, until, groupBy: q.groupBy, timeZone }, [first, ...rest]);
      const records = await db.kysely
        .selectFrom('usage_records')
        .selectAll()
        .where('endpoint', '=', 'messages')
        .where('at', '>=', since)
        .where('at', '<', until)
        .execute();
      const ok = (r: Record<string, unknown>) => Number(r.status) >= 200 && Number(r.status) < 300;
      const want = multiGroups(
        records,
        q,
        timeZone,
        (r) => Number(r.at),
        (r, d) => r[COLUMN[d]],
        (r, c) => (c === 'requests' ? Number(ok(r)) : c === 'errors' ? Number(!ok(r)) : Number(r[c])),
      );
      const found = multiGroups(
        got,
        q,
        timeZone,
        (r) => Number(r.bucket),
        (r, d) => r[d],
        (r, c) => Number(r[c]),
      );
      expect(new Map([...found].sort())).toEqual(new Map([...want].sort()));
      // Only the sums asked for are read.
      for (const row of got) for (const c of ROLLUP_SUMS) expect(c in row).toBe(q.sums.includes(c));
    }
  }

  it('sum exactly what the ledger holds, for any range, group, filter and timezone', {
    timeout: 120_000,
  }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(recordArb, { maxLength: 40 }), { minLength: 1, maxLength: 6 }),
        fc.array(queryArb, { minLength: 1, maxLength: 12 }),
        fc.array(multiArb, { maxLength: 4 }),
        fc.nat(),
        fc.constantFrom(...ZONES),
        fc.constantFrom(...ZONES),
        async (batches, queries, multi, split, zoneA, zoneB) => {
          for (const table of ['usage_records', 'usage_rollups', 'usage_daily', 'spend'] as const)
            await db.kysely.deleteFrom(table).execute();
          await db.kysely.deleteFrom('meta').where('key', '=', 'usage_daily_timezone').execute();
          const ats = batches.flat().map((r) => r.at);
          // Some batches through a ledger without a zone (UTC days), then the table is cut in zone A
          // and the rest go through a ledger in zone A (as serve does); later it is rebuilt in zone B.
          const cut = split % (batches.length + 1);
          await write(createLedger(db, 'org_test'), batches.slice(0, cut));
          await ensureDailyRollups(db, zoneA);
          await write(createLedger(db, 'org_test', { timeZone: zoneA }), batches.slice(cut));
          const orgSpend = await db.kysely
            .selectFrom('spend')
            .select(sql<string | number | null>`sum(spent_micro)`.as('n'))
            .where('scope_type', '=', 'org')
            .executeTakeFirst();
          const charged = await db.kysely
            .selectFrom('usage_records')
            .select(sql<string | number | null>`sum(cost_micro)`.as('n'))
            .executeTakeFirst();
          expect(Number(orgSpend?.n ?? 0)).toBe(Number(charged?.n ?? 0));

          const raw = (
            await sql<Record<string, unknown>>`select ${sql.raw(SUMS)} from usage_records
              where endpoint = 'messages'`.execute(db.kysely)
          ).rows[0];
          for (const table of ['usage_rollups', 'usage_daily'] as const) {
            const rolled = (
              await sql<Record<string, unknown>>`select ${sql.raw(ROLLED_SUMS)}
                from ${sql.table(table)}`.execute(db.kysely)
            ).rows[0];
            expect(sumsOf(rolled ?? {})).toEqual(sumsOf(raw ?? {}));
          }
          await check(queries, ats, zoneA);
          await checkMulti(multi, ats, zoneA);
          await ensureDailyRollups(db, zoneB);
          await check(queries, ats, zoneB);
          await checkMulti(multi, ats, zoneB);
        },
      ),
      { numRuns: target.name === 'sqlite' ? 60 : 25 },
    );
  });

  it('cuts days at Asia/Kathmandu midnight (18:15 UTC), the same rows labelled by UTC days otherwise', async () => {
    for (const table of ['usage_records', 'usage_rollups', 'usage_daily', 'spend'] as const)
      await db.kysely.deleteFrom(table).execute();
    await db.kysely.deleteFrom('meta').where('key', '=', 'usage_daily_timezone').execute();
    const ledger = createLedger(db, 'org_test');
    const one = {
      key: 'key_a',
      user: 'usr_a',
      team: null,
      model: 'm',
      credential: null,
      endpoint: 'messages',
      tokens: 10,
      estimated: 0,
    };
    await Promise.all([
      ledger.append(toRecord({ ...one, status: 200, cost: 1, at: Date.parse('2026-06-01T18:14:59.999Z') })),
      ledger.append(toRecord({ ...one, status: 200, cost: 20, at: Date.parse('2026-06-01T18:15:00Z') })),
      ledger.append(toRecord({ ...one, status: 500, cost: 300, at: Date.parse('2026-06-02T12:00:00Z') })),
    ]);
    await ledger.close();
    const range = { since: Date.parse('2026-06-01T00:00:00Z'), until: Date.parse('2026-06-03T00:00:00Z') };
    const kathmandu = await summarise(db, 'day', range, 'Asia/Kathmandu');
    expect(kathmandu.map((r) => [r.group, r.cost_micro_usd, r.requests, r.errors])).toEqual([
      ['2026-06-01', 1, 1, 0],
      ['2026-06-02', 320, 1, 1],
    ]);
    const utc = await summarise(db, 'day', range);
    expect(utc.map((r) => [r.group, r.cost_micro_usd])).toEqual([
      ['2026-06-01', 21],
      ['2026-06-02', 300],
    ]);
  });
});
