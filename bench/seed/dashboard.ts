// `node dist/bench/bench/seed/dashboard.js ROWS OUT_JSON` (environment: TOLLGATE_HOME, and
// TOLLGATE_DATABASE_URL for PostgreSQL; no server running): a realistic installation for the dashboard
// scenario, made through the compiled program in dist/ — `initInstallation`, then `createServices`:
// 8 teams (monthly and daily budgets), 150 users (monthly budgets), 3 org credentials, 300 keys (2 per
// user) — and ROWS usage records over the last 120 days with a working-hours/weekday shape, appended
// through the gateway's own ledger writer (`createLedger`: buildBatch + the SQLite fast path or the
// PostgreSQL upserts, records, spend and rollups in one transaction) in batches of 50,000. Writes what
// the harness needs to OUT_JSON (the admin token of this throw-away installation, the objects, and
// the records per UTC day as generated — the ground truth the answers are checked against).
import { writeFileSync } from 'node:fs';
import { distFunction } from '../lib/dist.js';
import { log, ROOT } from '../lib/util.js';
import { type Charged, pickModel, timestamps, type UsageRecord, usageRecord } from './usage-records.js';

interface Installation {
  readonly orgId: string;
  readonly db: object;
  close(): Promise<void>;
}
type Actor = { actor: string };
interface Services {
  teams: {
    add(by: Actor, input: { name: string; monthlyBudgetMicro?: number | null }): Promise<{ id: string }>;
  };
  users: {
    add(
      by: Actor,
      input: { name: string; team?: string | null; monthlyBudgetMicro?: number | null },
    ): Promise<{ id: string }>;
  };
  credentials: {
    add(
      by: Actor,
      input: { name: string; provider: 'anthropic'; secret: string; validate: boolean },
    ): Promise<{ id: string }>;
  };
  keys: {
    issue(
      by: Actor,
      input: { user: string; name?: string | null; policy: Record<string, number | null> },
    ): Promise<{ id: string }>;
  };
  budgets: {
    set(
      by: Actor,
      target: { scope: 'team'; id: string; name: string },
      period: 'day' | 'month',
      limitMicro: number,
    ): Promise<object>;
  };
}
type LoadConfig = (input: {
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}) => Promise<{ usage: { timezone: string } }>;
type InitInstallation = (
  config: object,
  clock: () => number,
  actor: string,
) => Promise<{ installation: Installation; adminToken: string }>;
type CreateServices = (installation: Installation, config: object, clock: () => number) => Services;
interface Ledger {
  append(record: UsageRecord): Promise<void>;
  close(): Promise<void>;
}
type CreateLedger = (db: object, orgId: string, options: { maxQueue: number; timeZone: string }) => Ledger;
type EnsureDailyRollups = (db: object, timeZone: string) => Promise<boolean>;

export interface DashboardSeed {
  adminToken: string;
  teams: Array<{ id: string; name: string }>;
  users: Array<{ id: string; name: string; teamId: string }>;
  keys: Array<{ id: string; userId: string }>;
  credentials: string[];
  rows: number;
  setupSeconds: number;
  seedSeconds: number;
  /** Records per UTC day (YYYY-MM-DD) as generated: requests (2xx), errors, cost. */
  perDay: Record<string, { requests: number; errors: number; cost: number }>;
}

const total = Number(process.argv[2]);
const outFile = process.argv[3];
if (!Number.isSafeInteger(total) || total < 1 || !outFile) {
  log('usage: dashboard.js ROWS OUT_JSON');
  process.exit(2);
}

const loadConfig = await distFunction<LoadConfig>('config/load.js', 'loadConfig');
const initInstallation = await distFunction<InitInstallation>('install/installation.js', 'initInstallation');
const createServices = await distFunction<CreateServices>('services.js', 'createServices');
const createLedger = await distFunction<CreateLedger>('usage/ledger.js', 'createLedger');
const ensureDailyRollups = await distFunction<EnsureDailyRollups>(
  'usage/daily-rollups.js',
  'ensureDailyRollups',
);

const USD = 1_000_000;
const by = { actor: 'bench' };
const config = await loadConfig({ env: process.env, cwd: ROOT });
const setupStarted = Date.now();
const { installation, adminToken } = await initInstallation(config, () => Date.now(), 'bench');
const services = createServices(installation, config, () => Date.now());

const out: DashboardSeed = {
  adminToken,
  teams: [],
  users: [],
  keys: [],
  credentials: [],
  rows: total,
  setupSeconds: 0,
  seedSeconds: 0,
  perDay: {},
};
const TEAMS = ['platform', 'payments', 'search', 'mobile', 'data', 'infra', 'growth', 'support'];
try {
  for (const name of TEAMS) {
    const team = await services.teams.add(by, { name, monthlyBudgetMicro: 60_000 * USD });
    await services.budgets.set(by, { scope: 'team', id: team.id, name }, 'day', 5_000 * USD);
    out.teams.push({ id: team.id, name });
  }
  for (let i = 0; i < 3; i++) {
    const secret = `sk-ant-api03-test-bench-dashboard-${i}-not-a-real-key-000000`;
    const c = await services.credentials.add(by, {
      name: `org-${i + 1}`,
      provider: 'anthropic',
      secret,
      validate: false,
    });
    out.credentials.push(c.id);
  }
  for (let i = 0; i < 150; i++) {
    const team = out.teams[i % out.teams.length] as { id: string; name: string };
    const name = `coder-${String(i + 1).padStart(3, '0')}`;
    const user = await services.users.add(by, { name, team: team.name, monthlyBudgetMicro: 4_000 * USD });
    out.users.push({ id: user.id, name, teamId: team.id });
    for (const kind of ['laptop', 'ci']) {
      const key = await services.keys.issue(by, { user: name, name: `${name}-${kind}`, policy: {} });
      out.keys.push({ id: key.id, userId: user.id });
    }
  }
  out.setupSeconds = (Date.now() - setupStarted) / 1000;
  log(
    `  ${out.teams.length} teams, ${out.users.length} users, ${out.keys.length} keys, ${out.credentials.length} credentials in ${out.setupSeconds.toFixed(1)} s`,
  );

  // Who sends a request: users differ in activity (a long tail), a user's first key carries most of
  // their traffic, and a key mostly goes through one credential (its "home"), sometimes another.
  const charged: Charged[] = [];
  const weights: number[] = [];
  out.keys.forEach((k, i) => {
    const user = out.users[Math.floor(i / 2)] as { id: string; teamId: string };
    const home = out.credentials[i % out.credentials.length] ?? null;
    charged.push({ keyId: k.id, userId: user.id, teamId: user.teamId, credentialId: home });
    weights.push((1 / (Math.floor(i / 2) + 8) ** 0.9) * (i % 2 === 0 ? 0.75 : 0.25));
  });
  const cumulative: number[] = [];
  let acc = 0;
  for (const w of weights) {
    acc += w;
    cumulative.push(acc);
  }
  const pick = (): Charged => {
    const r = Math.random() * acc;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] ?? 0) <= r) lo = mid + 1;
      else hi = mid;
    }
    const who = charged[lo] as Charged;
    if (Math.random() < 0.05) {
      const other = out.credentials[Math.floor(Math.random() * out.credentials.length)] ?? null;
      return { ...who, credentialId: other };
    }
    return who;
  };

  const BATCH = 50_000;
  // As serve does: the daily usage table in the reporting timezone (empty now, so instant), and a ledger
  // adding to it in that zone — serve then finds it already cut there and does not rebuild it.
  await ensureDailyRollups(installation.db, config.usage.timezone);
  const ledger = createLedger(installation.db, installation.orgId, {
    maxQueue: BATCH,
    timeZone: config.usage.timezone,
  });
  const now = Date.now();
  const started = Date.now();
  let batch: Array<Promise<void>> = [];
  let done = 0;
  let lastLog = started;
  for (const at of timestamps(total, now - 120 * 86_400_000, now - 60_000)) {
    const record = usageRecord(at, pick(), pickModel(Math.random()));
    const day = new Date(at).toISOString().slice(0, 10);
    const d = out.perDay[day] ?? { requests: 0, errors: 0, cost: 0 };
    out.perDay[day] = d;
    if (record.status === 200) d.requests++;
    else d.errors++;
    d.cost += record.cost_micro;
    batch.push(ledger.append(record));
    if (batch.length === BATCH) {
      await Promise.all(batch);
      done += batch.length;
      batch = [];
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        const s = (lastLog - started) / 1000;
        log(`  … ${done} rows (${s.toFixed(0)} s, ${Math.round(done / s)} rows/s)`);
      }
    }
  }
  await Promise.all(batch);
  await ledger.close();
  out.seedSeconds = (Date.now() - started) / 1000;
} finally {
  await installation.close();
}
writeFileSync(outFile, `${JSON.stringify(out)}\n`, { mode: 0o600 });
