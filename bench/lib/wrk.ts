// The load generator: wrk (C, epoll; cheap enough to share 2 cores with the servers it drives).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { runCaptured } from './procs.js';
import { isRecord, ROOT } from './util.js';

export const WRK_SCRIPT = join(ROOT, 'bench', 'wrk', 'bench.lua');

export const WRK_MISSING = [
  'wrk (the load generator) is not installed.',
  '  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y wrk   (or: bash .ci/bench-deps.sh)',
  '  macOS:         brew install wrk',
  '  other:         https://github.com/wg/wrk (make, then put `wrk` on PATH)',
].join('\n');

/** wrk's version line, or null when wrk is not on PATH. */
export function wrkVersion(): string | null {
  const which = spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' });
  if (which.status !== 0 || !which.stdout.trim()) return null;
  // `wrk --version` prints the version and usage, and exits 1.
  const v = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  const first = `${v.stdout}${v.stderr}`.split('\n')[0]?.trim();
  return first || 'wrk (unknown version)';
}

let pdeathsig: boolean | null = null;

/**
 * wrk is a C program and cannot load servers/guard.js; where util-linux's `setpriv --pdeathsig` exists it
 * starts wrk (same process, exec) so that the kernel kills it if the runner dies. Otherwise wrk simply
 * runs to the end of its -d duration.
 */
function withParentDeathSignal(args: readonly string[]): [string, string[]] {
  if (pdeathsig === null) {
    const probe = spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true']);
    pdeathsig = probe.status === 0;
  }
  return pdeathsig ? ['setpriv', ['--pdeathsig', 'KILL', 'wrk', ...args]] : ['wrk', [...args]];
}

export interface WrkLoad {
  /** Full URL, e.g. http://127.0.0.1:1234/v1/messages */
  readonly url: string;
  readonly connections: number;
  readonly threads: number;
  readonly durationMs: number;
  /** static: wrk's fixed-request path (one key, one body); dynamic: one pre-formatted request per key, in turn. */
  readonly mode: 'static' | 'dynamic';
  readonly keysFile: string;
  readonly bodyFiles: readonly string[];
}

export interface WrkResult {
  readonly requests: number;
  readonly durationS: number;
  readonly reqPerSec: number;
  readonly bytes: number;
  /** Responses with a status outside 2xx/3xx. */
  readonly non2xx: number;
  readonly ok: number;
  readonly errors: {
    readonly connect: number;
    readonly read: number;
    readonly write: number;
    readonly timeout: number;
  };
  readonly latencyMs: {
    readonly p50: number;
    readonly p90: number;
    readonly p99: number;
    readonly p999: number;
    readonly mean: number;
    readonly max: number;
  };
}

function num(record: Record<string, unknown>, key: string): number {
  const value = record[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`wrk: no number for ${key}`);
  return value;
}

export function parseWrk(stdout: string): WrkResult {
  const line = stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (!line) throw new Error(`wrk printed no WRK_JSON line:\n${stdout.slice(-2000)}`);
  const parsed: unknown = JSON.parse(line.slice('WRK_JSON '.length));
  if (!isRecord(parsed)) throw new Error('wrk: WRK_JSON is not an object');
  const durationS = num(parsed, 'duration_us') / 1e6;
  const requests = num(parsed, 'requests');
  const non2xx = num(parsed, 'status');
  const ms = (key: string) => num(parsed, key) / 1000;
  return {
    requests,
    durationS,
    reqPerSec: durationS > 0 ? requests / durationS : 0,
    bytes: num(parsed, 'bytes'),
    non2xx,
    ok: requests - non2xx,
    errors: {
      connect: num(parsed, 'connect'),
      read: num(parsed, 'read'),
      write: num(parsed, 'write'),
      timeout: num(parsed, 'timeout'),
    },
    latencyMs: {
      p50: ms('p50'),
      p90: ms('p90'),
      p99: ms('p99'),
      p999: ms('p999'),
      mean: ms('mean'),
      max: ms('max'),
    },
  };
}

export async function runWrk(load: WrkLoad): Promise<WrkResult> {
  const seconds = Math.max(1, Math.round(load.durationMs / 1000));
  const args = [
    `-t${Math.min(load.threads, load.connections)}`,
    `-c${load.connections}`,
    `-d${seconds}s`,
    '--timeout',
    '10s',
    '-s',
    WRK_SCRIPT,
    load.url,
    '--',
    load.mode,
    load.keysFile,
    ...load.bodyFiles,
  ];
  const [command, argv] = withParentDeathSignal(args);
  const run = await runCaptured('wrk', command, argv, { timeoutMs: seconds * 1000 + 30_000 });
  if (run.timedOut) throw new Error(`wrk did not finish within ${seconds + 30} s`);
  if (run.code !== 0)
    throw new Error(`wrk failed (exit ${run.code}): ${run.stderr.trim() || run.stdout.trim()}`);
  return parseWrk(run.stdout);
}
