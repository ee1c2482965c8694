// Command-line options of `npm run bench` / `npm run bench:soak`.
import { parseArgs } from 'node:util';
import { parseDuration } from './util.js';

export interface Options {
  readonly scenarios: readonly string[] | null;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly threads: number;
  readonly rounds: number;
  readonly keys: number;
  readonly ledgerRows: number;
  /** Usage rows of the dashboard scenario on SQLite and on PostgreSQL. */
  readonly dashboardRows: number;
  readonly dashboardPgRows: number;
  readonly json: boolean;
  readonly out: string | null;
  readonly soak: boolean;
  readonly sampleMs: number;
  readonly keep: boolean;
  /** Directory for V8 CPU profiles of the proxy and Tollgate (node --cpu-prof), or null. */
  readonly profile: string | null;
  /** Extra node arguments for Tollgate (V8 settings to compare), split on spaces. */
  readonly nodeArgs: readonly string[];
  /** A twin Tollgate path with its OTLP push (to a stub in the runner, every 1 s) and /metrics scraped every 1 s. */
  readonly metrics: boolean;
  /** The Redis of the shared-* scenarios (a database of its own, emptied before each start). */
  readonly redisUrl: string;
  readonly list: boolean;
  readonly help: boolean;
}

export const USAGE = `Usage: npm run bench -- [options]          (npm run bench:soak -- [options] for the soak)

  --scenario NAME     run only this scenario (repeatable, or a comma list); --list shows them
  --duration D        load per measured run (default 10s; soak: 10m), e.g. 5s, 2m
  --warmup D          unrecorded load before each measured run (default 2s; 0 to skip)
  --rounds N          measure every path N times, interleaved, and report the median (default 1)
  --threads N         wrk threads (default 1: wrk shares the 2 cores with the servers)
  --keys N            keys of the keys-10k scenario (default 10000)
  --ledger-rows N     pre-filled rows of the ledger-1m scenario (default 1000000)
  --dashboard-rows N  usage rows of the dashboard scenario on SQLite (default 10000000)
  --dashboard-pg-rows N  the same on PostgreSQL (default 1000000; skipped if it does not answer)
  --json              print the results as JSON on stdout (the table goes to stderr)
  --out FILE          write the JSON to FILE (the table stays on stdout)
  --soak              soak mode: 64 connections on Tollgate, RSS sampled, trend reported
  --sample D          soak: RSS sampling interval (default 5s)
  --keep              keep the temporary directory (server logs, Tollgate homes)
  --profile DIR       write CPU profiles of the proxy and Tollgate to DIR (node --cpu-prof);
                      summarise one with node dist/bench/bench/profile.js FILE.cpuprofile
  --node-args "A B"   extra node arguments for Tollgate, e.g. "--max-semi-space-size=16"
  --metrics           small/stream scenarios add a path "tollgate + metrics": a twin Tollgate with
                      claude.otel_endpoint at a collector stub in the runner (1 s interval) and
                      GET /metrics scraped every second, measured in the same rounds
  --redis-url URL     Redis of the shared-* scenarios (default redis://127.0.0.1:6379/15, emptied
                      before use; their PostgreSQL is the dashboard's: TOLLGATE_TEST_DATABASE_URL or
                      postgres://127.0.0.1:5432/test, in a throw-away schema); none: that Tollgate
                      on PostgreSQL alone (budgets and rate limits in process), to see what Redis costs
  --list              list the scenarios and exit
  -h, --help          this help
`;

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name}: expected a positive integer, got ${text}`);
  return n;
}

function duration(name: string, text: string | undefined, fallback: number, allowZero = false): number {
  if (text === undefined) return fallback;
  if (allowZero && /^0(ms|s|m)?$/.test(text)) return 0;
  const ms = parseDuration(text);
  if (ms === null) throw new Error(`${name}: expected a duration such as 10s or 2m, got ${text}`);
  return ms;
}

export function parseOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      scenario: { type: 'string', multiple: true },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      threads: { type: 'string' },
      keys: { type: 'string' },
      'ledger-rows': { type: 'string' },
      'dashboard-rows': { type: 'string' },
      'dashboard-pg-rows': { type: 'string' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      soak: { type: 'boolean', default: false },
      sample: { type: 'string' },
      keep: { type: 'boolean', default: false },
      profile: { type: 'string' },
      'node-args': { type: 'string' },
      metrics: { type: 'boolean', default: false },
      'redis-url': { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const soak = values.soak ?? false;
  const scenarios =
    values.scenario
      ?.flatMap((s) => s.split(','))
      .map((s) => s.trim())
      .filter(Boolean) ?? null;
  return {
    scenarios: scenarios && scenarios.length > 0 ? scenarios : null,
    durationMs: duration('--duration', values.duration, soak ? 600_000 : 10_000),
    warmupMs: duration('--warmup', values.warmup, 2_000, true),
    threads: positiveInt('--threads', values.threads, 1),
    rounds: positiveInt('--rounds', values.rounds, 1),
    keys: positiveInt('--keys', values.keys, 10_000),
    ledgerRows: positiveInt('--ledger-rows', values['ledger-rows'], 1_000_000),
    dashboardRows: positiveInt('--dashboard-rows', values['dashboard-rows'], 10_000_000),
    dashboardPgRows: positiveInt('--dashboard-pg-rows', values['dashboard-pg-rows'], 1_000_000),
    json: values.json ?? false,
    out: values.out ?? null,
    soak,
    sampleMs: duration('--sample', values.sample, 5_000),
    keep: values.keep ?? false,
    profile: values.profile ?? null,
    nodeArgs: (values['node-args'] ?? '').split(' ').filter(Boolean),
    metrics: values.metrics ?? false,
    redisUrl: values['redis-url'] ?? 'redis://127.0.0.1:6379/15',
    list: values.list ?? false,
    help: values.help ?? false,
  };
}
