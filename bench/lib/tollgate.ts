// Tollgate under test: an installation set up through the real CLI (`node bin/tollgate.js …`), served
// by `node bin/tollgate.js serve` in a process of its own, and read back (usage rows) from its database:
// the SQLite file, or PostgreSQL through psql for an installation on a shared database.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { launcherNodeArgs } from './launcher.js';
import { type Managed, runCaptured, startLogged, waitForListening } from './procs.js';
import { BENCH_DIST, isRecord, log, ROOT } from './util.js';

export const BUDGET_USD = '1000000';
export const UPSTREAM_SECRET = 'sk-ant-api03-test-bench-not-a-real-key-0000000000';

export interface TollgateHome {
  readonly name: string;
  readonly home: string;
  readonly dbFile: string;
  /** PostgreSQL (TOLLGATE_DATABASE_URL) when the installation is on a shared database, else null. */
  readonly databaseUrl: string | null;
  readonly env: NodeJS.ProcessEnv;
  readonly keyId: string;
  readonly key: string;
}

/** The environment of every Tollgate process: the parent's, minus any TOLLGATE_* it happens to carry. */
export function tollgateEnv(home: string, upstreamUrl: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TOLLGATE_')) env[k] = v;
  return {
    ...env,
    TOLLGATE_HOME: home,
    TOLLGATE_UPSTREAM_URL: upstreamUrl,
    TOLLGATE_LOGGING_LEVEL: 'warn',
    TOLLGATE_CLAUDE_MAX_MONTHLY_SPEND_USD: BUDGET_USD,
  };
}

async function cli(env: NodeJS.ProcessEnv, args: readonly string[], input?: string): Promise<string> {
  const run = await runCaptured(
    'tollgate cli',
    process.execPath,
    [join(ROOT, 'bin', 'tollgate.js'), ...args],
    { env, cwd: ROOT, timeoutMs: 60_000, ...(input === undefined ? {} : { input }) },
  );
  if (run.code !== 0 || run.timedOut) {
    throw new Error(
      `tollgate ${args.join(' ')} failed (exit ${run.code}${run.timedOut ? ', timed out' : ''}):\n${run.stderr}${run.stdout}`,
    );
  }
  return run.stdout;
}

/**
 * A fresh installation under `dir`: team, user and key budgets of $1,000,000, an org cap of the same
 * (TOLLGATE_CLAUDE_MAX_MONTHLY_SPEND_USD, set for every process), an org credential for the fake and
 * a key with rate limits high enough never to bind — so every check runs and none refuses.
 */
export async function createHome(
  dir: string,
  name: string,
  upstreamUrl: string,
  shared: { databaseUrl: string; redisUrl: string | null } | null = null,
): Promise<TollgateHome> {
  mkdirSync(dir, { recursive: true });
  const home = join(dir, 'home');
  const env = tollgateEnv(home, upstreamUrl);
  if (shared) {
    env.TOLLGATE_DATABASE_URL = shared.databaseUrl;
    if (shared.redisUrl) env.TOLLGATE_REDIS_URL = shared.redisUrl;
  }
  await cli(env, ['init']);
  await cli(env, ['team', 'add', 'bench', '--monthly-budget', BUDGET_USD]);
  await cli(env, ['user', 'add', 'bench', '--team', 'bench', '--monthly-budget', BUDGET_USD]);
  await cli(
    env,
    ['credential', 'add', 'org', '--provider', 'anthropic', '--no-validate'],
    `${UPSTREAM_SECRET}\n`,
  );
  const issued: unknown = JSON.parse(
    await cli(env, [
      'key',
      'issue',
      '--user',
      'bench',
      '--monthly-budget',
      BUDGET_USD,
      '--rpm',
      '100000000',
      '--tpm',
      '1000000000',
      '--concurrency',
      '100000',
      '--json',
    ]),
  );
  if (!isRecord(issued) || typeof issued.key !== 'string' || typeof issued.id !== 'string') {
    throw new Error('tollgate key issue --json printed no key');
  }
  return {
    name,
    home,
    dbFile: join(home, 'tollgate.db'),
    databaseUrl: shared?.databaseUrl ?? null,
    env,
    keyId: issued.id,
    key: issued.key,
  };
}

export interface Served {
  readonly managed: Managed;
  readonly url: string;
}

/**
 * `node <launcher args> bin/tollgate.js serve --port 0`, with the guard that ends it if the runner
 * dies; `nodeArgs` come after the launcher's (V8 takes the last value of a repeated flag).
 */
export async function serve(
  t: TollgateHome,
  logFile: string,
  nodeArgs: readonly string[] = [],
): Promise<Served> {
  const guard = pathToFileURL(join(BENCH_DIST, 'servers', 'guard.js')).href;
  const managed = startLogged(
    `tollgate (${t.name})`,
    process.execPath,
    [
      ...launcherNodeArgs(ROOT),
      ...nodeArgs,
      '--import',
      guard,
      join(ROOT, 'bin', 'tollgate.js'),
      'serve',
      '--port',
      '0',
    ],
    { env: t.env, cwd: ROOT, logFile },
  );
  const url = await waitForListening(managed, 30_000);
  return { managed, url };
}

function openRead(dbFile: string): Database.Database {
  return new Database(dbFile, { readonly: true, fileMustExist: true });
}

/** Rows of a read-only query (no parameters) on the installation's database, as records of strings. */
function query(t: TollgateHome, text: string): Array<Record<string, string>> {
  if (t.databaseUrl !== null) {
    // psql prints one row per line, fields tab-separated; the URL names a trust-auth test server.
    // libpq does not read `+` as a space in a URL, so the schema's `options` go through PGOPTIONS.
    const url = new URL(t.databaseUrl);
    const options = url.searchParams.get('options');
    url.searchParams.delete('options');
    const out = execFileSync('psql', [url.toString(), '-X', '-q', '-t', '-A', '-F', '\t', '-c', text], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, ...(options ? { PGOPTIONS: options } : {}) },
    });
    const names = [...text.matchAll(/\bas (\w+)/gi)].map((m) => m[1] ?? '');
    return out
      .split('\n')
      .filter(Boolean)
      .map((line) => Object.fromEntries(line.split('\t').map((v, i) => [names[i] ?? String(i), v])));
  }
  const db = openRead(t.dbFile);
  try {
    return (db.prepare(text).all() as Array<Record<string, unknown>>).map((r) =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)])),
    );
  } finally {
    db.close();
  }
}

export function countUsageRows(t: TollgateHome): number {
  return Number(query(t, 'select count(*) as n from usage_records')[0]?.n ?? Number.NaN);
}

/** Usage rows by HTTP status (non-200 rows mean Tollgate recorded failures). */
export function usageStatuses(t: TollgateHome, sinceMs: number): Map<number, number> {
  const since = Math.floor(sinceMs);
  const rows = query(
    t,
    `select status as status, count(*) as n from usage_records where at >= ${since} group by status`,
  );
  return new Map(rows.map((r) => [Number(r.status), Number(r.n)]));
}

/** The governance every measured request must pass: monthly budgets on the key, user and team. */
export function governanceProblems(t: TollgateHome): string[] {
  const rows = query(
    t,
    "select scope_type as scope_type, count(*) as n from budgets where period = 'month' group by scope_type",
  );
  const scopes = new Set(rows.map((r) => r.scope_type));
  return ['key', 'user', 'team'].filter((s) => !scopes.has(s)).map((s) => `no monthly budget on scope ${s}`);
}

/** Issues `count` more keys to user bench through the compiled services (bench/seed/keys.ts). */
export async function seedKeys(t: TollgateHome, count: number, outFile: string): Promise<number> {
  const started = Date.now();
  const run = await runCaptured(
    'seed keys',
    process.execPath,
    [join(BENCH_DIST, 'seed', 'keys.js'), String(count), outFile],
    { env: t.env, cwd: ROOT, timeoutMs: 10 * 60_000, echo: true },
  );
  if (run.code !== 0)
    throw new Error(`seeding ${count} keys failed (exit ${run.code}):\n${run.stderr.slice(-2000)}`);
  const seconds = (Date.now() - started) / 1000;
  log(`  ${count} keys issued in ${seconds.toFixed(1)} s`);
  return seconds;
}

/** Pre-fills the ledger with `rows` usage rows (bench/seed/ledger.ts); the server must be stopped. */
export async function seedLedger(t: TollgateHome, rows: number): Promise<number> {
  const started = Date.now();
  const run = await runCaptured(
    'seed ledger',
    process.execPath,
    [join(BENCH_DIST, 'seed', 'ledger.js'), t.dbFile, t.keyId, String(rows)],
    { env: t.env, cwd: ROOT, timeoutMs: 15 * 60_000, echo: true },
  );
  if (run.code !== 0)
    throw new Error(`seeding ${rows} ledger rows failed (exit ${run.code}):\n${run.stderr.slice(-2000)}`);
  const seconds = (Date.now() - started) / 1000;
  log(`  ${rows} usage rows written in ${seconds.toFixed(1)} s`);
  return seconds;
}
