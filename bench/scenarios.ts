// The scenarios of `npm run bench`. Each one measures the same load on the fake upstream directly, on
// the pass-through proxy (the baseline every ratio refers to) and on Tollgate with full governance —
// except `dashboard`, which times the dashboard's API calls on a large ledger (bench/dashboard.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { runDashboard } from './dashboard.js';
import { type BenchContext, fakeKey, type TollgateServer } from './lib/context.js';
import type { DashboardResult } from './lib/dashboard-report.js';
import { Measurements, type Target } from './lib/measure.js';
import type { Options } from './lib/options.js';
import { stop } from './lib/procs.js';
import type { ScenarioResult } from './lib/report.js';
import type { BodyKind } from './lib/requests.js';
import { touchEveryKey } from './lib/requests.js';
import { seedKeys, seedLedger } from './lib/tollgate.js';
import { log } from './lib/util.js';

export interface Scenario {
  readonly name: string;
  readonly title: (opts: Options) => string;
  readonly body: BodyKind;
  readonly connections: number;
  /** Rough extra setup time (seconds), for the run's time limit. */
  readonly setupS: (opts: Options) => number;
  /** Measured paths (for the time limit). */
  readonly paths: (opts: Options) => number;
  /** Whether it drives load with wrk through the fake upstream and the proxy. */
  readonly load: boolean;
  /** Load scenarios fill `m` and answer null; the dashboard answers its own result. */
  run(ctx: BenchContext, m: Measurements): Promise<DashboardResult | null>;
}

function short(n: number): string {
  if (n >= 1_000_000 && n % 1_000_000 === 0) return `${n / 1_000_000}M`;
  if (n >= 1_000 && n % 1_000 === 0) return `${n / 1_000}k`;
  return String(n);
}

function fakeTarget(ctx: BenchContext, mode: 'static' | 'dynamic', keysFile: string): Target {
  if (!ctx.fake) throw new Error('fake upstream not started');
  return {
    label: 'fake (direct)',
    kind: 'fake',
    server: ctx.fake,
    tollgate: null,
    mode,
    keysFile,
    verifyKey: fakeKey(1),
  };
}

function proxyTarget(ctx: BenchContext, mode: 'static' | 'dynamic', keysFile: string): Target {
  if (!ctx.proxy) throw new Error('proxy not started');
  return {
    label: 'proxy',
    kind: 'proxy',
    server: ctx.proxy,
    tollgate: null,
    mode,
    keysFile,
    verifyKey: fakeKey(1),
  };
}

function tollgateTarget(
  label: string,
  server: TollgateServer,
  mode: 'static' | 'dynamic',
  keysFile: string = server.keyFile,
  prepare?: () => Promise<void>,
): Target {
  return {
    label,
    kind: 'tollgate',
    server,
    tollgate: server,
    mode,
    keysFile,
    verifyKey: server.home.key,
    ...(prepare ? { prepare } : {}),
  };
}

/** Small JSON request or 200-token stream, at 1 or 64 connections: fake, proxy, Tollgate (one key). */
function basic(body: BodyKind, connections: number): Scenario {
  const what =
    body === 'small' ? 'non-streaming small request (20 output tokens)' : 'streaming, 200 text deltas';
  return {
    name: `${body}-c${connections}`,
    title: () => `${what}, ${connections} connection${connections === 1 ? '' : 's'}`,
    body,
    connections,
    paths: (opts) => (opts.metrics ? 4 : 3),
    load: true,
    setupS: () => 5,
    async run(ctx, m) {
      const tollgate = await ctx.mainTollgate();
      // With --metrics, a twin with its metrics on runs in the same rounds: the two settings side by side.
      const monitored = await ctx.monitoredTollgate();
      await m.phase([
        fakeTarget(ctx, 'static', ctx.fakeKeyFile),
        proxyTarget(ctx, 'static', ctx.fakeKeyFile),
        tollgateTarget('tollgate', tollgate, 'static'),
        ...(monitored ? [tollgateTarget('tollgate + metrics', monitored, 'static')] : []),
      ]);
      return null;
    },
  };
}

/**
 * Issue 17: one Tollgate on PostgreSQL + Redis (budgets and rate limits in Redis, the ledger in
 * PostgreSQL) beside the SQLite one and the proxy, same load, same rounds; Redis's and PostgreSQL's
 * CPU per request are read too.
 */
function shared(body: BodyKind, connections: number): Scenario {
  const what = body === 'small' ? 'non-streaming small request' : 'streaming, 200 text deltas';
  return {
    name: `shared-${body}-c${connections}`,
    title: () =>
      `${what}, ${connections} connection${connections === 1 ? '' : 's'}: Tollgate on SQLite and on PostgreSQL + Redis`,
    body,
    connections,
    paths: () => 4,
    load: true,
    setupS: () => 10,
    async run(ctx, m) {
      const sqlite = await ctx.mainTollgate();
      const onShared = await ctx.sharedTollgate();
      await m.phase([
        fakeTarget(ctx, 'static', ctx.fakeKeyFile),
        proxyTarget(ctx, 'static', ctx.fakeKeyFile),
        tollgateTarget('tollgate (SQLite)', sqlite, 'static'),
        { ...tollgateTarget('tollgate (PostgreSQL + Redis)', onShared, 'static'), services: true },
      ]);
      return null;
    },
  };
}

/** 1 vs N keys: the load spread over N keys (wrk picks the next key for every request). */
const keysScenario: Scenario = {
  name: 'keys-10k',
  title: (opts) =>
    `streaming (200 text deltas), 64 connections — the memory target's setting: ${opts.keys} active keys and 64 open streams — load spread over the keys (each verified once in a warm-up pass) vs 1 key; every path gets a key per request from the same wrk script`,
  body: 'stream',
  connections: 64,
  paths: () => 4,
  load: true,
  setupS: (opts) => 15 + opts.keys / 50,
  async run(ctx, m) {
    const n = ctx.opts.keys;
    const fakeKeys = ctx.file(`keys-fake-${n}.txt`);
    writeFileSync(fakeKeys, `${Array.from({ length: n }, (_, i) => fakeKey(i + 1)).join('\n')}\n`);
    const one = await ctx.mainTollgate();
    const keysFile = ctx.file(`keys-tollgate-${n}.txt`);
    log(`  issuing ${n} keys through the compiled services (dist/services.js)…`);
    const many = await ctx.startTollgate(`tollgate (${short(n)} keys)`, 'keys', (home) =>
      seedKeys(home, n, keysFile).then(() => undefined),
    );
    try {
      const keys = readFileSync(keysFile, 'utf8').split('\n').filter(Boolean);
      await m.phase([
        fakeTarget(ctx, 'dynamic', fakeKeys),
        proxyTarget(ctx, 'dynamic', fakeKeys),
        tollgateTarget('tollgate (1 key)', one, 'dynamic'),
        tollgateTarget(`tollgate (${short(n)} keys)`, many, 'dynamic', keysFile, async () => {
          const started = Date.now();
          const statuses = await touchEveryKey(many.url, keys, 64);
          const summary = [...statuses.entries()].map(([s, c]) => `${s}: ${c}`).join(', ');
          log(
            `  warm-up pass over ${keys.length} keys in ${((Date.now() - started) / 1000).toFixed(1)} s (${summary})`,
          );
          const ok = statuses.get(200) ?? 0;
          if (ok !== keys.length)
            throw new Error(`warm-up pass: only ${ok} of ${keys.length} keys answered 200 (${summary})`);
        }),
      ]);
    } finally {
      await stop(many.managed);
    }
    return null;
  },
};

/** Request cost must not grow with history: the same load before and after pre-filling the ledger. */
const ledgerScenario: Scenario = {
  name: 'ledger-1m',
  title: (opts) =>
    `non-streaming, 64 connections, Tollgate with an empty ledger, then restarted on ${opts.ledgerRows} pre-filled usage rows`,
  body: 'small',
  connections: 64,
  paths: () => 4,
  load: true,
  setupS: (opts) => 20 + opts.ledgerRows / 10_000,
  async run(ctx, m) {
    // Only one Tollgate runs during this scenario.
    await ctx.stopMainTollgate();
    const rows = ctx.opts.ledgerRows;
    const fake = fakeTarget(ctx, 'static', ctx.fakeKeyFile);
    const proxy = proxyTarget(ctx, 'static', ctx.fakeKeyFile);
    const empty = await ctx.startTollgate('tollgate (empty ledger)', 'ledger');
    try {
      await m.phase([fake, proxy, tollgateTarget('tollgate (empty ledger)', empty, 'static')]);
    } finally {
      await stop(empty.managed);
    }
    log(`  pre-filling the ledger with ${rows} rows (server stopped)…`);
    await seedLedger(empty.home, rows);
    const full = await ctx.serveHome(`tollgate (${short(rows)}-row ledger)`, empty.home);
    try {
      await m.phase([proxy, tollgateTarget(`tollgate (${short(rows)}-row ledger)`, full, 'static')]);
    } finally {
      await stop(full.managed);
    }
    return null;
  },
};

/** Issue 14: the overview's and the usage explorer's API calls on 10M SQLite / 1M PostgreSQL rows. */
const dashboardScenario: Scenario = {
  name: 'dashboard',
  title: (opts) =>
    `the dashboard's API calls (overview, usage explorer) on ${short(opts.dashboardRows)} SQLite and ${short(opts.dashboardPgRows)} PostgreSQL usage rows, cold and warm, over HTTP; target ≤ 200 ms each`,
  body: 'small',
  connections: 1,
  paths: () => 0,
  load: false,
  // Seeding runs at some 50,000 rows/s on SQLite and 15,000 on PostgreSQL (×3 in the time limit).
  setupS: (opts) => 60 + opts.dashboardRows / 50_000 + opts.dashboardPgRows / 15_000,
  run: (ctx) => runDashboard(ctx),
};

export const SCENARIOS: readonly Scenario[] = [
  basic('small', 1),
  basic('small', 64),
  basic('stream', 1),
  basic('stream', 64),
  keysScenario,
  ledgerScenario,
  dashboardScenario,
  shared('small', 1),
  shared('small', 64),
  shared('stream', 64),
];

export async function runScenario(ctx: BenchContext, s: Scenario): Promise<ScenarioResult> {
  log(`\n== ${s.name}: ${s.title(ctx.opts)}`);
  const m = new Measurements(ctx, { name: s.name, body: s.body, connections: s.connections });
  let dashboard: DashboardResult | null = null;
  try {
    dashboard = await s.run(ctx, m);
  } catch (error) {
    ctx.problem(`${s.name}: setup failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  return {
    name: s.name,
    title: s.title(ctx.opts),
    connections: s.connections,
    body: s.body,
    rows: m.rows(),
    dashboard,
  };
}
