// Results: the machine, one fixed-width table of every scenario × path with its ratios to the
// pass-through proxy, the problems found, and the same data as JSON.
import { cpus, loadavg, release, totalmem, type } from 'node:os';
import type { DashboardResult } from './dashboard-report.js';
import { round } from './util.js';

export type PathKind = 'fake' | 'proxy' | 'tollgate';

export interface Latency {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

export interface VsProxy {
  /** req/s ÷ proxy req/s */
  readonly reqPerSecRatio: number;
  /** p50 − proxy p50, ms */
  readonly p50DeltaMs: number;
  /** p99 ÷ proxy p99 */
  readonly p99Ratio: number;
  /** CPU µs per request ÷ the proxy's (null when either was not read) */
  readonly cpuRatio: number | null;
}

export interface Row {
  readonly scenario: string;
  readonly path: string;
  readonly kind: PathKind;
  readonly rounds: number;
  /** Completed requests in the measured runs (all rounds). */
  readonly requests: number;
  /** Median over rounds. */
  readonly reqPerSec: number | null;
  /** Median over rounds, ms. */
  readonly latencyMs: Latency | null;
  /** Highest RSS of the process under test while measured (MB). */
  readonly rssPeakMb: number | null;
  /** RSS at the end of the last measured run (MB). */
  readonly rssEndMb: number | null;
  /** Median over rounds: CPU time of the server process per completed request, µs. */
  readonly cpuUsPerReq: number | null;
  /** For a Tollgate on PostgreSQL + Redis: those services' CPU per request, µs (median over rounds). */
  readonly servicesUsPerReq: { readonly redis: number | null; readonly postgres: number | null } | null;
  readonly non2xx: number;
  /** wrk connect + read + write errors and timeouts. */
  readonly socketErrors: number;
  vsProxy: VsProxy | null;
  /** Tollgate only: usage rows added vs 2xx answers counted by wrk (warm-up included). */
  readonly usage: { readonly rowsAdded: number; readonly ok2xx: number } | null;
  /** 1-minute load average at the start of each measured run: how busy the machine was. */
  readonly loadAverages: readonly number[];
  /** Why the row has no figures (verification or run failure). */
  readonly failed: string | null;
}

export interface ScenarioResult {
  readonly name: string;
  readonly title: string;
  readonly connections: number;
  readonly body: 'small' | 'stream';
  readonly rows: Row[];
  /** The dashboard scenario's own results (it runs no load), else null. */
  readonly dashboard: DashboardResult | null;
}

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly node: string;
  readonly os: string;
  readonly memoryGb: number;
  readonly wrk: string;
  /** 1/5/15-minute load averages when the run started: other work on the machine skews absolute figures. */
  readonly loadAverageAtStart: readonly number[];
}

export function machine(wrk: string): Machine {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    node: process.version,
    os: `${type()} ${release()}`,
    memoryGb: round(totalmem() / 2 ** 30, 1),
    wrk,
    loadAverageAtStart: loadavg().map((l) => round(l, 2)),
  };
}

/** Fills in each row's ratios against its scenario's `proxy` row. */
export function addRatios(result: ScenarioResult): void {
  const proxy = result.rows.find((r) => r.kind === 'proxy' && r.failed === null);
  for (const row of result.rows) {
    if (!proxy?.reqPerSec || !proxy.latencyMs || row.reqPerSec === null || !row.latencyMs || row.failed) {
      row.vsProxy = null;
      continue;
    }
    row.vsProxy = {
      reqPerSecRatio: round(row.reqPerSec / proxy.reqPerSec, 3),
      p50DeltaMs: round(row.latencyMs.p50 - proxy.latencyMs.p50, 3),
      p99Ratio: round(proxy.latencyMs.p99 > 0 ? row.latencyMs.p99 / proxy.latencyMs.p99 : Number.NaN, 3),
      cpuRatio:
        row.cpuUsPerReq === null || !proxy.cpuUsPerReq ? null : round(row.cpuUsPerReq / proxy.cpuUsPerReq, 3),
    };
  }
}

const COLUMNS: ReadonlyArray<{ title: string; width: number; left?: boolean }> = [
  { title: 'scenario', width: 10, left: true },
  { title: 'path', width: 24, left: true },
  { title: 'req/s', width: 8 },
  { title: 'p50 ms', width: 7 },
  { title: 'p90 ms', width: 7 },
  { title: 'p99 ms', width: 7 },
  { title: 'RSS MB', width: 6 },
  { title: 'req/s ÷ proxy', width: 13 },
  { title: 'p50 Δ ms', width: 8 },
  { title: 'p99 ÷ proxy', width: 11 },
  { title: 'CPU µs/req', width: 10 },
  { title: 'CPU ÷ proxy', width: 11 },
  { title: 'non-2xx/err', width: 11 },
];

function cell(text: string, width: number, left = false): string {
  return left ? text.padEnd(width) : text.padStart(width);
}

function ms(value: number): string {
  return value < 100 ? value.toFixed(2) : value.toFixed(0);
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(2)}`;
}

function line(cells: readonly string[]): string {
  return `| ${cells.map((c, i) => cell(c, COLUMNS[i]?.width ?? 8, COLUMNS[i]?.left)).join(' | ')} |`;
}

export function renderTable(results: readonly ScenarioResult[]): string {
  const out: string[] = [];
  out.push(line(COLUMNS.map((c) => c.title)));
  out.push(
    `|${COLUMNS.map((c) => `${c.left ? ':' : '-'}${'-'.repeat(c.width)}${c.left ? '-' : ':'}`).join('|')}|`,
  );
  for (const s of results) {
    for (const r of s.rows) {
      if (r.failed || r.reqPerSec === null || !r.latencyMs) {
        out.push(line([s.name, r.path, 'FAILED', ...COLUMNS.slice(3).map(() => '-')]));
        continue;
      }
      const v = r.vsProxy;
      const bad = r.non2xx + r.socketErrors;
      out.push(
        line([
          s.name,
          r.path,
          Math.round(r.reqPerSec).toString(),
          ms(r.latencyMs.p50),
          ms(r.latencyMs.p90),
          ms(r.latencyMs.p99),
          r.rssPeakMb === null ? '-' : r.rssPeakMb.toFixed(0),
          v ? `${v.reqPerSecRatio.toFixed(2)}×` : '-',
          v ? signed(v.p50DeltaMs) : '-',
          v ? `${v.p99Ratio.toFixed(2)}×` : '-',
          r.cpuUsPerReq === null ? '-' : r.cpuUsPerReq.toFixed(0),
          v?.cpuRatio ? `${v.cpuRatio.toFixed(2)}×` : '-',
          bad === 0 ? '0' : `${r.non2xx}/${r.socketErrors} !!`,
        ]),
      );
    }
  }
  const services = results.flatMap((s) =>
    s.rows.filter((r) => r.servicesUsPerReq).map((r) => ({ scenario: s.name, row: r })),
  );
  if (services.length > 0) {
    out.push('');
    out.push("CPU of the shared services per request (µs, beside the Tollgate process's own in the table):");
    for (const { scenario, row } of services) {
      const u = row.servicesUsPerReq;
      const f = (v: number | null | undefined) => (v === null || v === undefined ? '?' : v.toFixed(0));
      out.push(
        `  ${scenario} / ${row.path}: tollgate ${f(row.cpuUsPerReq)}, redis ${f(u?.redis)}, postgres ${f(u?.postgres)}`,
      );
    }
  }
  const failing = results.some((s) => s.rows.some((r) => r.non2xx + r.socketErrors > 0));
  if (failing) {
    out.push('');
    out.push(
      '!! rows marked !! include failed requests: their req/s and latencies are NOT comparable (see PROBLEMS)',
    );
  }
  return out.join('\n');
}

export function renderMachine(m: Machine, command: string, atEnd = false): string {
  const load = atEnd
    ? `load average at start: ${m.loadAverageAtStart.join(' ')}, at end: ${loadavg()
        .map((l) => round(l, 2))
        .join(' ')}`
    : `load average at start: ${m.loadAverageAtStart.join(' ')}`;
  return [
    `machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, ${m.os}; node ${m.node}; ${m.wrk}`,
    `${load} (other work on the machine skews absolute figures; compare ratios)`,
    `command: ${command}`,
  ].join('\n');
}

export function renderScenarioLegend(results: readonly ScenarioResult[]): string {
  return results.map((s) => `  ${s.name.padEnd(10)} ${s.title}`).join('\n');
}
