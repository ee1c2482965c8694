// Usage retention keeps every report right (SQLite, and PostgreSQL when TOLLGATE_TEST_DATABASE_URL is
// set): four months of usage go through the real ledger into an installation, `tollgate usage --json`
// (the CLI, in process) is taken for every grouping and many periods and filters, the raw rows older
// than the retention are pruned — first interrupted after one batch (a crash between batches), then to
// the end — and every answer is the same each time. Controls: old raw rows really are gone and newer
// ones kept; the rollup and daily tables are untouched; a range edge inside a pruned quarter hour counts
// that whole quarter hour (and, before pruning, the same query was exact and different).
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../src/db/connect.js';
import { migrateToLatest } from '../src/db/migrate.js';
import type { UsageRecordTable } from '../src/db/schema.js';
import { readMeta } from '../src/install/meta.repo.js';
import { ensureDailyRollups } from '../src/usage/daily-rollups.js';
import { createLedger } from '../src/usage/ledger.js';
import { pruneRawUsage, RAW_HORIZON_META, rawHorizon, retentionCutoff } from '../src/usage/retention.js';
import { bucketOf } from '../src/usage/rollup-batch.js';
import { GROUPS, summarise } from '../src/usage/usage.repo.js';
import { type CliHome, tempHome } from './helpers/cli.js';
import { databaseTargets } from './helpers/databases.js';
import { createPgSchema, PG_URL, type PgSchema } from './helpers/pg.js';

const DAY = 86_400_000;
const QUARTER = 900_000;
const RETENTION_DAYS = 30;
const NOW = Date.now();

/** A deterministic pseudo-random sequence (the same usage on every run and database). */
function lcg(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    return s / 2_147_483_648;
  };
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const startOfMonth = (ms: number, back = 0) => {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - back, 1);
};

interface Ids {
  users: Array<{ id: string; name: string; team: string | null }>;
  teams: Array<{ id: string; name: string }>;
}

function records(ids: Ids, count: number): UsageRecordTable[] {
  const rnd = lcg(42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const out: UsageRecordTable[] = [];
  for (let i = 0; i < count; i++) {
    const user = pick(ids.users);
    const status = pick([200, 200, 200, 200, 429, 500]);
    const tokens = Math.floor(rnd() * 5000);
    out.push({
      id: `req_${i}`,
      // Four months back from an hour ago, anywhere in the quarter hours.
      at: NOW - 3_600_000 - Math.floor(rnd() * 120 * DAY),
      endpoint: pick(['messages', 'messages', 'messages', 'count_tokens'] as const),
      key_id: pick(['key_a', 'key_b', 'key_c']),
      user_id: user.id,
      team_id: user.team,
      service_user_id: null,
      credential_id: pick(['cred_a', 'cred_b', null]),
      model: pick(['claude-haiku-4-5', 'claude-sonnet-4-6', null]),
      input_tokens: tokens,
      output_tokens: tokens % 97,
      cache_write_5m_tokens: tokens % 13,
      cache_write_1h_tokens: tokens % 7,
      cache_read_tokens: tokens % 31,
      web_search_requests: tokens % 3,
      cost_micro: Math.floor(rnd() * 90_000),
      saved_micro: tokens % 101,
      latency_ms: 5,
      status,
      outcome: status < 300 ? 'ok' : 'upstream_error',
      upstream_request_id: null,
      stream: 0,
      partial: 0,
      estimated: rnd() < 0.1 ? 1 : 0,
      attempts: 1,
    });
  }
  return out;
}

/** Every row of a table, order-independent (numbers as numbers on both databases). */
async function tableDigest(db: Db, table: 'usage_rollups' | 'usage_daily'): Promise<string> {
  const rows = await db.kysely.selectFrom(table).selectAll().execute();
  const lines = rows.map((r) => JSON.stringify(Object.entries(r).map(([k, v]) => [k, String(v)]))).sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

const baseRecord: UsageRecordTable = {
  id: 'req_base',
  at: 0,
  endpoint: 'messages',
  key_id: 'key_a',
  user_id: 'usr_a',
  team_id: null,
  service_user_id: null,
  credential_id: null,
  model: null,
  input_tokens: 11,
  output_tokens: 7,
  cache_write_5m_tokens: 3,
  cache_write_1h_tokens: 2,
  cache_read_tokens: 5,
  web_search_requests: 0,
  cost_micro: 0,
  saved_micro: 1,
  latency_ms: 5,
  status: 200,
  outcome: 'ok',
  upstream_request_id: null,
  stream: 0,
  partial: 0,
  estimated: 0,
  attempts: 1,
};

const targets: Array<'sqlite' | 'postgres'> = PG_URL ? ['sqlite', 'postgres'] : ['sqlite'];

describe.each(targets)('usage retention on %s', (kind) => {
  let cli: CliHome;
  let schema: PgSchema | null = null;
  let db: Db;
  let ids: Ids;
  let seeded: UsageRecordTable[];
  const cutoff = retentionCutoff(NOW, RETENTION_DAYS);
  /** A quarter hour 45 days back (pruned), with a record 7 minutes into it. */
  const oddBucket = bucketOf(NOW - 45 * DAY);

  /** Every report asked before and after pruning: each grouping × each period × filters. */
  function reports(): string[][] {
    const thisMonth: string[] = [];
    const lastMonth = ['--since', day(startOfMonth(NOW, 1)), '--until', day(startOfMonth(NOW))];
    const oneDay = ['--since', day(NOW - 60 * DAY), '--until', day(NOW - 59 * DAY)];
    const weekPruned = ['--since', day(NOW - 50 * DAY), '--until', day(NOW - 43 * DAY)];
    const weekAcross = ['--since', day(NOW - 33 * DAY), '--until', day(NOW - 26 * DAY)];
    const lastWeek = ['--since', '7d'];
    // Everything seeded (the day grouping walks every day of its range: a bounded one).
    const everything = ['--since', day(NOW - 200 * DAY), '--until', day(NOW + 2 * DAY)];
    const periods = [thisMonth, lastMonth, oneDay, weekPruned, weekAcross, lastWeek, everything];
    const filters = [
      [],
      ['--user', ids.users[0]?.name ?? ''],
      ['--team', ids.teams[0]?.name ?? ''],
      ['--model', 'claude-haiku-4-5'],
      ['--key', 'key_b'],
      ['--credential', 'cred_a'],
    ];
    const out: string[][] = [];
    for (const by of GROUPS) for (const period of periods) out.push(['usage', '--by', by, ...period]);
    for (const filter of filters.slice(1))
      for (const period of [lastMonth, everything, weekAcross])
        for (const by of ['model', 'day']) out.push(['usage', '--by', by, ...period, ...filter]);
    return out;
  }

  async function answers(): Promise<unknown[]> {
    const all: unknown[] = [];
    for (const argv of reports()) all.push(await cli.json(argv));
    return all;
  }

  async function rawCounts(): Promise<{ old: number; kept: number }> {
    const count = async (op: '<' | '>=') =>
      Number(
        (
          await db.kysely
            .selectFrom('usage_records')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('at', op, cutoff)
            .executeTakeFirstOrThrow()
        ).n,
      );
    return { old: await count('<'), kept: await count('>=') };
  }

  beforeAll(async () => {
    const env: Record<string, string> = {};
    if (kind === 'postgres' && PG_URL) {
      schema = await createPgSchema(PG_URL);
      env.TOLLGATE_DATABASE_URL = schema.url;
    }
    cli = await tempHome(env);
    expect((await cli.run(['init'])).code).toBe(0);
    for (const team of ['core', 'web']) await cli.run(['team', 'add', team]);
    await cli.run(['user', 'add', 'ada', '--team', 'core']);
    await cli.run(['user', 'add', 'bo', '--team', 'web']);
    await cli.run(['user', 'add', 'cy']);
    const users = await cli.json<Array<{ id: string; name: string; team: string | null }>>(['user', 'list']);
    const teams = await cli.json<Array<{ id: string; name: string }>>(['team', 'list']);
    const teamId = new Map(teams.map((t) => [t.name, t.id]));
    ids = {
      users: users.map((u) => ({
        id: u.id,
        name: u.name,
        team: u.team ? (teamId.get(u.team) ?? null) : null,
      })),
      teams,
    };
    db = openDatabase(
      schema ? { kind: 'postgres', url: schema.url } : { kind: 'sqlite', path: `${cli.home}/tollgate.db` },
    );
    await ensureDailyRollups(db, 'UTC');
    seeded = records(ids, 4000);
    // One record 7 minutes into a quarter hour that will be pruned (the edge case below).
    const first = seeded[0] as UsageRecordTable;
    seeded.push({ ...first, id: 'req_odd', at: oddBucket + 7 * 60_000, endpoint: 'messages', status: 200 });
    seeded.push({ ...first, id: 'req_odd2', at: oddBucket + 2 * 60_000, endpoint: 'messages', status: 200 });
    const orgId = (await readMeta(db, 'org_id')) ?? 'org';
    const ledger = createLedger(db, orgId);
    await Promise.all(seeded.map((r) => ledger.append(r)));
    await ledger.close();
  }, 120_000);

  afterAll(async () => {
    await db?.close();
    await cli?.cleanup();
    await schema?.drop();
  });

  it('gives the same figures for every grouping and period after pruning, also after a prune cut short', {
    timeout: 300_000,
  }, async () => {
    const before = await answers();
    // The seeded usage is in the answers (a control that they are not all empty).
    const everything = await cli.json<Array<{ requests: number; errors: number }>>([
      'usage',
      '--since',
      day(NOW - 200 * DAY),
    ]);
    const messages = seeded.filter((r) => r.endpoint === 'messages').length;
    expect(everything.reduce((n, r) => n + r.requests + r.errors, 0)).toBe(messages);
    const counts = await rawCounts();
    expect(counts.old).toBeGreaterThan(1000);
    expect(counts.kept).toBeGreaterThan(500);
    const digests = {
      rollups: await tableDigest(db, 'usage_rollups'),
      daily: await tableDigest(db, 'usage_daily'),
    };

    // A prune stopped after its first batch, as by a crash between two transactions.
    const stop = new AbortController();
    const cut = await pruneRawUsage(db, cutoff, {
      batchRows: 200,
      signal: stop.signal,
      onBatch: () => stop.abort(),
    });
    expect(cut.complete).toBe(false);
    expect(await rawHorizon(db)).toBe(cutoff);
    const partial = await rawCounts();
    expect(partial.old).toBeLessThan(counts.old);
    expect(partial.old).toBeGreaterThan(0);
    expect(partial.kept).toBe(counts.kept);
    expect(await answers()).toEqual(before);

    // The next run (after the "restart") finishes the job.
    const done = await pruneRawUsage(db, cutoff, { batchRows: 300 });
    expect(done.complete).toBe(true);
    expect(cut.deleted + done.deleted).toBe(counts.old);
    expect(await rawCounts()).toEqual({ old: 0, kept: counts.kept });
    expect(await answers()).toEqual(before);
    // What the reports read was not touched.
    expect(await tableDigest(db, 'usage_rollups')).toBe(digests.rollups);
    expect(await tableDigest(db, 'usage_daily')).toBe(digests.daily);

    // Pruning again deletes nothing; an older cutoff never lowers the horizon.
    expect((await pruneRawUsage(db, cutoff)).deleted).toBe(0);
    await pruneRawUsage(db, cutoff - 10 * DAY);
    expect(await rawHorizon(db)).toBe(cutoff);
    expect(await answers()).toEqual(before);
  });

  it('counts a pruned quarter hour whole when a range edge falls inside it', async () => {
    // Pruned by the test above (it runs first in this file) or here.
    await pruneRawUsage(db, cutoff);
    const at = (ms: number) => new Date(ms).toISOString();
    const sum = async (since: number, until: number) =>
      (
        await cli.json<Array<{ requests: number; errors: number }>>([
          'usage',
          '--since',
          at(since),
          '--until',
          at(until),
        ])
      ).reduce((n, r) => n + r.requests + r.errors, 0);
    const inOdd = seeded.filter(
      (r) => r.endpoint === 'messages' && r.at >= oddBucket && r.at < oddBucket + QUARTER,
    ).length;
    const afterFive = seeded.filter(
      (r) => r.endpoint === 'messages' && r.at >= oddBucket + 5 * 60_000 && r.at < oddBucket + QUARTER,
    ).length;
    // Before pruning, 5 minutes into the bucket would have counted fewer records than the whole bucket:
    expect(afterFive).toBeLessThan(inOdd);
    // After, the edge is widened to the bucket: never fewer than asked, exactly the whole bucket.
    expect(await sum(oddBucket + 5 * 60_000, oddBucket + QUARTER)).toBe(inOdd);
    expect(await sum(oddBucket + 5 * 60_000, oddBucket + 10 * 60_000)).toBe(inOdd);
    expect(await sum(oddBucket, oddBucket + QUARTER)).toBe(inOdd);
    // Control: an edge in a kept quarter hour is still exact to the millisecond.
    const kept = seeded
      .filter((r) => r.endpoint === 'messages' && r.at >= cutoff)
      .sort((a, b) => a.at - b.at);
    const mid = kept[Math.floor(kept.length / 2)] as UsageRecordTable;
    const exact = seeded.filter((r) => r.endpoint === 'messages' && r.at >= mid.at + 1 && r.at < NOW).length;
    expect(await sum(mid.at + 1, NOW)).toBe(exact);
  });
});

// The rule for any range, as a property: after pruning below a horizon H, a report over [since, until)
// equals the report before pruning over the range widened to whole quarter hours at each edge that falls
// inside a quarter hour below H — and is unchanged everywhere else.
// Few quarter hours, so records, range edges and the horizon keep meeting in the same ones.
const QUARTERS = 12;
const BASE = Date.UTC(2026, 2, 7);
const inQuarter = fc.oneof(
  fc.constantFrom(0, 1, QUARTER / 2, QUARTER - 1),
  fc.integer({ min: 0, max: QUARTER - 1 }),
);
const recordArb = fc.record({
  key: fc.constantFrom('key_a', 'key_b'),
  user: fc.constantFrom('usr_a', 'usr_b'),
  model: fc.constantFrom('claude-haiku-4-5', null),
  endpoint: fc.constantFrom('messages', 'messages', 'count_tokens'),
  status: fc.constantFrom(200, 500),
  at: fc
    .tuple(fc.integer({ min: 0, max: QUARTERS - 1 }), inQuarter)
    .map(([quarter, ms]) => BASE + quarter * QUARTER + ms),
  cost: fc.integer({ min: 0, max: 5000 }),
});
const edgeArb = fc
  .tuple(fc.integer({ min: -1, max: QUARTERS }), inQuarter)
  .map(([quarter, ms]) => BASE + quarter * QUARTER + ms);

function widen(since: number, until: number, horizon: number): [number, number] {
  // An empty range asks for nothing and gets nothing, pruned or not (sumUsage answers it at once).
  if (until <= since) return [since, until];
  const s = since % QUARTER !== 0 && bucketOf(since) < horizon ? bucketOf(since) : since;
  const u = until % QUARTER !== 0 && bucketOf(until) < horizon ? bucketOf(until) + QUARTER : until;
  return [s, u];
}

describe.each(databaseTargets())('the pruning rule for any range on $name', (target) => {
  let db: Db;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ db, close } = await target.open());
    await migrateToLatest(db);
  });
  afterAll(() => close());

  it('answers an edge inside a pruned quarter hour with the whole quarter hour, and is exact elsewhere', {
    timeout: 240_000,
  }, async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(recordArb, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 0, max: QUARTERS }),
        fc.array(fc.tuple(edgeArb, edgeArb, fc.constantFrom(...GROUPS)), { minLength: 1, maxLength: 8 }),
        async (generated, q, queries) => {
          for (const table of ['usage_records', 'usage_rollups', 'usage_daily', 'spend'] as const)
            await db.kysely.deleteFrom(table).execute();
          await db.kysely
            .deleteFrom('meta')
            .where('key', 'in', [RAW_HORIZON_META, 'usage_daily_timezone'])
            .execute();
          await ensureDailyRollups(db, 'UTC');
          const ledger = createLedger(db, 'org_test');
          await Promise.all(
            generated.map((g) =>
              ledger.append({
                ...baseRecord,
                id: `req_p${n++}`,
                at: g.at,
                endpoint: g.endpoint as UsageRecordTable['endpoint'],
                key_id: g.key,
                user_id: g.user,
                model: g.model,
                status: g.status,
                cost_micro: g.cost,
              }),
            ),
          );
          await ledger.close();
          const horizon = BASE + q * QUARTER;
          const ranges = queries.map(([a, b, by]) => ({ since: Math.min(a, b), until: Math.max(a, b), by }));
          const want = [];
          for (const r of ranges) {
            const [since, until] = widen(r.since, r.until, horizon);
            want.push(await summarise(db, r.by, { since, until }));
          }
          await pruneRawUsage(db, horizon, { batchRows: 7, pauseMs: 0 });
          const left = await db.kysely
            .selectFrom('usage_records')
            .select('at')
            .where('at', '<', horizon)
            .executeTakeFirst();
          expect(left).toBeUndefined();
          for (const [i, r] of ranges.entries())
            expect(await summarise(db, r.by, { since: r.since, until: r.until })).toEqual(want[i]);
        },
      ),
      {
        numRuns: target.name === 'sqlite' ? 40 : 15,
        // Found once in CI: an empty range ending inside a pruned quarter hour (it gets nothing).
        examples: [
          [
            [
              {
                key: 'key_a',
                user: 'usr_a',
                model: 'claude-haiku-4-5',
                endpoint: 'messages',
                status: 200,
                at: BASE + 5 * QUARTER,
                cost: 0,
              },
            ],
            6,
            [[BASE + 6 * QUARTER - 1, BASE + 6 * QUARTER - 1, 'model']],
          ],
        ],
      },
    );
  });
});
