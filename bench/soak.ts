// Soak: Tollgate under 64 connections for a long time (default 10 minutes), its RSS sampled every few
// seconds, and the trend reported: the slope of a least-squares line (MB/min) and the averages of the
// first and last thirds. Growth is flagged when both say so (see GROWTH_*).
import { writeFileSync } from 'node:fs';
import type { BenchContext } from './lib/context.js';
import { logTail } from './lib/procs.js';
import { type Machine, renderMachine } from './lib/report.js';
import { verifyPath } from './lib/requests.js';
import { type RssSample, sampleRss } from './lib/rss.js';
import { countUsageRows } from './lib/tollgate.js';
import { formatDuration, log, round } from './lib/util.js';
import { runWrk } from './lib/wrk.js';

/** Flag growth when the fitted slope exceeds this (MB per minute)… */
const GROWTH_SLOPE_MB_PER_MIN = 1;
/** …and the last third's average exceeds the first third's by more than this fraction. */
const GROWTH_THIRDS_FRACTION = 0.05;

export interface Trend {
  readonly samples: number;
  /** Samples of the first `excludedS` seconds (start-up, JIT, caches filling) are left out of the fit. */
  readonly excludedS: number;
  readonly slopeMbPerMin: number;
  readonly firstThirdMb: number;
  readonly lastThirdMb: number;
  readonly peakMb: number;
  readonly endMb: number;
  readonly growth: boolean;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

export function trend(all: readonly RssSample[], durationMs: number): Trend {
  const excludedMs = Math.min(60_000, durationMs * 0.2);
  const kept = all.filter((s) => s.tMs >= excludedMs);
  const xs = kept.map((s) => s.tMs / 60_000);
  const ys = kept.map((s) => s.mb);
  const mx = mean(xs);
  const my = mean(ys);
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    const dx = (xs[i] ?? 0) - mx;
    num += dx * ((ys[i] ?? 0) - my);
    den += dx * dx;
  }
  const slope = den > 0 ? num / den : Number.NaN;
  const third = Math.max(1, Math.floor(ys.length / 3));
  const first = mean(ys.slice(0, third));
  const last = mean(ys.slice(-third));
  return {
    samples: kept.length,
    excludedS: Math.round(excludedMs / 1000),
    slopeMbPerMin: round(slope, 3),
    firstThirdMb: round(first, 1),
    lastThirdMb: round(last, 1),
    peakMb: round(Math.max(...all.map((s) => s.mb)), 1),
    endMb: round(all.at(-1)?.mb ?? Number.NaN, 1),
    growth: slope > GROWTH_SLOPE_MB_PER_MIN && last > first * (1 + GROWTH_THIRDS_FRACTION),
  };
}

function clock(ms: number): string {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export async function runSoak(ctx: BenchContext, m: Machine, command: string): Promise<number> {
  const { opts } = ctx;
  log(
    `bench: soak, ${formatDuration(opts.durationMs)} at 64 connections, RSS every ${formatDuration(opts.sampleMs)}; temp dir ${ctx.tmp}`,
  );
  log(renderMachine(m, command));
  ctx.fake = await ctx.startNodeServer('fake (direct)', 'fake.js', []);
  const tollgate = await ctx.mainTollgate();
  await verifyPath(tollgate.url, tollgate.home.key);
  log('  tollgate: verified (200 JSON, 200 SSE ending in message_stop)');

  const before = countUsageRows(tollgate.home);
  const sampler = sampleRss(tollgate.managed.pid, opts.sampleMs, (s) =>
    log(`  ${clock(s.tMs)}  RSS ${s.mb.toFixed(1)} MB`),
  );
  // Alternating requests: a small JSON one, then a 200-token stream, so both paths are soaked.
  let wrkError: string | null = null;
  const result = await runWrk({
    url: `${tollgate.url}/v1/messages`,
    connections: 64,
    threads: opts.threads,
    durationMs: opts.durationMs,
    mode: 'dynamic',
    keysFile: tollgate.keyFile,
    bodyFiles: [ctx.bodies.small, ctx.bodies.stream],
  }).catch((error: unknown) => {
    wrkError = error instanceof Error ? error.message : String(error);
    return null;
  });
  const rss = sampler.stop();
  if (wrkError) ctx.problem(`wrk: ${wrkError}`);
  if (tollgate.managed.exit) {
    ctx.problem(
      `tollgate EXITED during the soak (code ${tollgate.managed.exit.code}, signal ${tollgate.managed.exit.signal}):\n${logTail(tollgate.managed.logFile)}`,
    );
  }
  const t = trend(rss.samples, opts.durationMs);
  let rowsAdded: number | null = null;
  if (result) {
    rowsAdded = countUsageRows(tollgate.home) - before;
    if (rowsAdded < result.ok)
      ctx.problem(`only ${rowsAdded} usage rows were added for ${result.ok} 2xx answers`);
    const bad =
      result.non2xx +
      result.errors.connect +
      result.errors.read +
      result.errors.write +
      result.errors.timeout;
    if (bad > 0) {
      ctx.problem(
        `FAILED REQUESTS: ${result.non2xx} non-2xx, socket errors connect ${result.errors.connect} read ${result.errors.read} write ${result.errors.write} timeout ${result.errors.timeout}, of ${result.requests}\n${logTail(tollgate.managed.logFile, 15)}`,
      );
    }
  }
  if (t.growth) {
    ctx.problem(
      `RSS GROWTH: ${t.slopeMbPerMin} MB/min, first third ${t.firstThirdMb} MB → last third ${t.lastThirdMb} MB`,
    );
  }

  const text = [
    '',
    renderMachine(m, command, true),
    `soak: ${formatDuration(opts.durationMs)}, 64 connections, small JSON and 200-token streams alternating, RSS of Tollgate every ${formatDuration(opts.sampleMs)}`,
    result
      ? `load: ${Math.round(result.reqPerSec)} req/s, p50 ${result.latencyMs.p50.toFixed(2)} ms, p99 ${result.latencyMs.p99.toFixed(2)} ms, ${result.requests} requests, ${result.non2xx} non-2xx; usage rows added ${rowsAdded}`
      : 'load: wrk failed',
    `RSS: peak ${t.peakMb} MB, end ${t.endMb} MB; fit over ${t.samples} samples after the first ${t.excludedS} s: slope ${t.slopeMbPerMin} MB/min; first third ${t.firstThirdMb} MB, last third ${t.lastThirdMb} MB`,
    `trend: ${t.growth ? 'GROWTH (slope > 1 MB/min and last third > first third + 5%)' : 'flat (no growth flagged: slope ≤ 1 MB/min or thirds within 5%)'}`,
    ctx.problems.length === 0
      ? 'problems: none'
      : `PROBLEMS (${ctx.problems.length}):\n${ctx.problems.map((p) => `  - ${p.replaceAll('\n', '\n    ')}`).join('\n')}`,
    '',
  ].join('\n');
  const json = `${JSON.stringify(
    {
      command,
      machine: m,
      options: opts,
      soak: { load: result, usageRowsAdded: rowsAdded, trend: t, samples: rss.samples },
      problems: ctx.problems,
    },
    null,
    2,
  )}\n`;
  if (opts.out) {
    writeFileSync(opts.out, json);
    process.stdout.write(text);
  } else if (opts.json) {
    process.stderr.write(text);
    process.stdout.write(json);
  } else {
    process.stdout.write(text);
  }
  return ctx.problems.length === 0 ? 0 : 1;
}
