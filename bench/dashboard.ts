// The dashboard scenario: a realistic installation with millions of usage rows (bench/seed/dashboard.ts),
// served by `tollgate serve`, and the dashboard's API calls timed over HTTP with the admin token — the
// overview and the usage explorer — cold (first call on a fresh server) and warm, on SQLite and on
// PostgreSQL, each answer checked against the seeder's own record of what it wrote.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from './lib/context.js';
import {
  createPgSchema,
  type DbStats,
  dashboardPgUrl,
  pgAnalyze,
  pgStats,
  pgUnreachable,
  sqliteStats,
} from './lib/dashboard-db.js';
import {
  DASHBOARD_LIMIT_MS,
  type DashboardCall,
  type DashboardDb,
  type DashboardResult,
} from './lib/dashboard-report.js';
import { runCaptured, stop } from './lib/procs.js';
import { serve, type TollgateHome, tollgateEnv } from './lib/tollgate.js';
import { BENCH_DIST, isRecord, log, median, ROOT } from './lib/util.js';
import type { DashboardSeed } from './seed/dashboard.js';

const WARM_CALLS = 5;
const DAY = 86_400_000;
/** The sums a usage row and the overview's totals both carry (usage name → overview name). */
const SUMS: ReadonlyArray<[string, string]> = [
  ['requests', 'requests'],
  ['errors', 'errors'],
  ['input_tokens', 'input_tokens'],
  ['output_tokens', 'output_tokens'],
  ['cache_write_5m_tokens', 'cache_write_5m_tokens'],
  ['cache_read_tokens', 'cache_read_tokens'],
  ['cost_micro_usd', 'cost_micro'],
  ['saved_micro_usd', 'saved_micro'],
];

type Json = Record<string, unknown>;

function ymd(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}

function items(body: unknown): Json[] {
  return isRecord(body) && Array.isArray(body.items) ? body.items.filter(isRecord) : [];
}

function total(rows: readonly Json[], field: string): number {
  return rows.reduce((s, r) => s + Number(r[field] ?? Number.NaN), 0);
}

async function get(base: string, token: string, path: string): Promise<{ ms: number; body: unknown }> {
  const started = performance.now();
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  const ms = performance.now() - started;
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${text.slice(0, 300)}`);
  return { ms, body: JSON.parse(text) };
}

/** One cold call and WARM_CALLS warm ones; the answer of the last. */
async function timeCall(base: string, token: string, call: string, path: string) {
  const cold = await get(base, token, path);
  const warm: number[] = [];
  let body = cold.body;
  for (let i = 0; i < WARM_CALLS; i++) {
    const r = await get(base, token, path);
    warm.push(r.ms);
    body = r.body;
  }
  const rows = path.startsWith('/admin/v1/overview')
    ? isRecord(body) && Array.isArray(body.by_model)
      ? body.by_model.length
      : 0
    : items(body).length;
  const result: DashboardCall = {
    call,
    path,
    coldMs: cold.ms,
    warmMedianMs: median(warm),
    warmMaxMs: Math.max(...warm),
    warmCalls: warm.length,
    withinLimit: Math.max(cold.ms, ...warm) <= DASHBOARD_LIMIT_MS,
    items: rows,
  };
  log(
    `    ${call.padEnd(40)} cold ${cold.ms.toFixed(1)} ms, warm median ${result.warmMedianMs.toFixed(1)} / max ${result.warmMaxMs.toFixed(1)} ms, ${rows} rows`,
  );
  return { result, body };
}

/** The calls of issue 14, timed, and their answers checked; failed checks are returned as problems. */
export async function measureDashboard(base: string, seed: DashboardSeed, now: number) {
  const token = seed.adminToken;
  const d30 = ymd(now - 30 * DAY);
  const d120 = ymd(now - 120 * DAY);
  const user = seed.users[0];
  const team = seed.teams[0];
  const key = seed.keys[0];
  if (!user || !team || !key) throw new Error('the seeder made no users, teams or keys');
  const plan: Array<[string, string]> = [
    ['overview', '/admin/v1/overview'],
    ...['day', 'model', 'user', 'key', 'team', 'credential'].map<[string, string]>((by) => [
      `usage by=${by} (30 d)`,
      `/admin/v1/usage?by=${by}&since=${d30}`,
    ]),
    [`usage by=day user=${user.name} (30 d)`, `/admin/v1/usage?by=day&since=${d30}&user=${user.name}`],
    [`usage by=model team=${team.name} (120 d)`, `/admin/v1/usage?by=model&since=${d120}&team=${team.name}`],
    ['usage by=day key=<key> (30 d)', `/admin/v1/usage?by=day&since=${d30}&key=${key.id}`],
  ];
  // The bench's own HTTP client loads on its first fetch (~50 ms here): one untimed call to /healthz
  // pays for that, so a cold figure is the server's first answer to that call and nothing of ours.
  await (await fetch(`${base}/healthz`)).text();
  const calls: DashboardCall[] = [];
  const answers = new Map<string, unknown>();
  for (const [call, path] of plan) {
    const { result, body } = await timeCall(base, token, call, path);
    calls.push(result);
    answers.set(path, body);
  }
  const problems: string[] = [];
  const checks: string[] = [];
  for (const c of calls) if (c.items === 0) problems.push(`${c.call}: empty answer`);
  if (problems.length === 0) checks.push('every answer non-empty');

  // The overview's 30-day totals must equal the explorer's by=model sums over the same days.
  const overview = answers.get('/admin/v1/overview');
  if (!isRecord(overview) || !Array.isArray(overview.days) || !isRecord(overview.totals)) {
    problems.push('overview: no days or totals');
  } else {
    const since = String(overview.days[0]);
    const byModel = items((await get(base, token, `/admin/v1/usage?by=model&since=${since}`)).body);
    const totals = overview.totals;
    const off = SUMS.filter(([u, o]) => total(byModel, u) !== Number(totals[o]));
    if (off.length > 0 || byModel.length === 0)
      problems.push(
        `overview totals differ from usage by=model since ${since}: ${off.map(([u, o]) => `${o} ${String(totals[o])} vs ${total(byModel, u)}`).join(', ')}`,
      );
    else checks.push(`overview totals = by=model sums since ${since}`);
  }

  // Every grouping of the same 30 days sums to the same totals.
  const byDay = items(answers.get(`/admin/v1/usage?by=day&since=${d30}`));
  for (const by of ['model', 'user', 'key', 'team', 'credential']) {
    const rows = items(answers.get(`/admin/v1/usage?by=${by}&since=${d30}`));
    const off = SUMS.filter(([u]) => total(rows, u) !== total(byDay, u));
    if (off.length > 0)
      problems.push(`usage by=${by} (30 d) sums differ from by=day: ${off.map(([u]) => u).join(', ')}`);
  }
  if (!problems.some((p) => p.includes('differ from by=day')))
    checks.push('by=model/user/key/team/credential sums = by=day sums');

  // The days must be exactly what the seeder wrote (days are UTC when usage.timezone is UTC).
  const zone = answers.get(`/admin/v1/usage?by=day&since=${d30}`);
  if (isRecord(zone) && zone.timezone === 'UTC') {
    const wrong: string[] = [];
    const expected = Object.entries(seed.perDay).filter(([day]) => day >= d30);
    if (expected.length !== byDay.length)
      wrong.push(`${byDay.length} days answered, ${expected.length} seeded`);
    for (const [day, want] of expected) {
      const got = byDay.find((r) => r.day === day);
      if (
        !got ||
        got.requests !== want.requests ||
        got.errors !== want.errors ||
        got.cost_micro_usd !== want.cost
      )
        wrong.push(`${day}: ${JSON.stringify(got ?? null)} vs seeded ${JSON.stringify(want)}`);
    }
    if (wrong.length > 0)
      problems.push(`usage by=day differs from the seeded records: ${wrong.slice(0, 3).join('; ')}`);
    else checks.push(`by=day = the seeded records, day by day (${expected.length} days)`);
  }
  return { calls, checks, problems };
}

async function seedAndMeasure(
  ctx: BenchContext,
  db: 'sqlite' | 'postgres',
  rows: number,
  databaseUrl: string | null,
  stats: (home: TollgateHome) => Promise<DbStats>,
): Promise<DashboardDb> {
  const dir = ctx.file(`dashboard-${db}`);
  const homeDir = join(dir, 'home');
  const env = tollgateEnv(homeDir, 'http://127.0.0.1:9');
  if (databaseUrl) env.TOLLGATE_DATABASE_URL = databaseUrl;
  const seedFile = join(dir, 'seed.json');
  log(`  ${db}: seeding ${rows} usage rows through the compiled services and ledger writer…`);
  const run = await runCaptured(
    'seed dashboard',
    process.execPath,
    [join(BENCH_DIST, 'seed', 'dashboard.js'), String(rows), seedFile],
    {
      env,
      cwd: ROOT,
      timeoutMs: 30 * 60_000,
      echo: true,
    },
  );
  if (run.code !== 0)
    throw new Error(`seeding the ${db} dashboard failed (exit ${run.code}):\n${run.stderr.slice(-2000)}`);
  const seed = JSON.parse(readFileSync(seedFile, 'utf8')) as DashboardSeed;
  const home: TollgateHome = {
    name: `dashboard-${db}`,
    home: homeDir,
    dbFile: join(homeDir, 'tollgate.db'),
    databaseUrl: env.TOLLGATE_DATABASE_URL ?? null,
    env,
    keyId: '',
    key: '',
  };
  const s = await stats(home);
  const seedRowsPerSec = rows / seed.seedSeconds;
  log(
    `  ${db}: ${rows} rows in ${seed.seedSeconds.toFixed(1)} s (${Math.round(seedRowsPerSec)} rows/s), ${s.sizeMb.toFixed(0)} MB, ${s.rollupRows} rollup rows`,
  );
  const served = await serve(home, join(dir, 'serve.log'), ctx.opts.nodeArgs);
  log(`  ${db}: tollgate serve on ${served.url} (pid ${served.managed.pid})`);
  try {
    const { calls, checks, problems } = await measureDashboard(served.url, seed, Date.now());
    for (const p of problems) ctx.problem(`dashboard (${db}): ${p}`);
    return {
      db,
      rows,
      setupSeconds: seed.setupSeconds,
      seedSeconds: seed.seedSeconds,
      seedRowsPerSec,
      dbSizeMb: s.sizeMb,
      rollupRows: s.rollupRows,
      calls,
      checks,
      skipped: null,
    };
  } finally {
    await stop(served.managed);
  }
}

function skipped(db: 'sqlite' | 'postgres', rows: number, why: string): DashboardDb {
  return {
    db,
    rows,
    setupSeconds: 0,
    seedSeconds: 0,
    seedRowsPerSec: 0,
    dbSizeMb: 0,
    rollupRows: 0,
    calls: [],
    checks: [],
    skipped: why,
  };
}

export async function runDashboard(ctx: BenchContext): Promise<DashboardResult> {
  const databases: DashboardDb[] = [];
  databases.push(
    await seedAndMeasure(ctx, 'sqlite', ctx.opts.dashboardRows, null, async (h) => sqliteStats(h.dbFile)),
  );
  const base = dashboardPgUrl();
  const down = await pgUnreachable(base);
  if (down) {
    log(`  postgres: skipped — ${down}`);
    databases.push(skipped('postgres', ctx.opts.dashboardPgRows, down));
  } else {
    const schema = await createPgSchema(base);
    try {
      databases.push(
        await seedAndMeasure(ctx, 'postgres', ctx.opts.dashboardPgRows, schema.url, async () => {
          const autovacuum = await pgAnalyze(schema);
          log(`  postgres: ANALYZE after seeding, as autovacuum would (autovacuum here: ${autovacuum})`);
          return pgStats(schema);
        }),
      );
    } finally {
      if (ctx.opts.keep) log(`  postgres: schema ${schema.name} kept (--keep)`);
      else await schema.drop();
    }
  }
  return { limitMs: DASHBOARD_LIMIT_MS, databases };
}
