// Measuring one path: verify it, warm it up, then drive it with wrk while sampling the RSS of the process
// under test; for Tollgate, also check that every 2xx answer left a usage row.
import { loadavg } from 'node:os';
import type { BenchContext, Server, TollgateServer } from './context.js';
import { cpuSeconds } from './cpu.js';
import { logTail } from './procs.js';
import type { Latency, PathKind, Row } from './report.js';
import { type BodyKind, verifyPath } from './requests.js';
import { type RssSummary, sampleRss } from './rss.js';
import { type ServiceName, servicesCpu } from './services-cpu.js';
import { countUsageRows, governanceProblems, usageStatuses } from './tollgate.js';
import { log, median, round } from './util.js';
import { runWrk, type WrkResult } from './wrk.js';

export interface Target {
  readonly label: string;
  readonly kind: PathKind;
  readonly server: Server;
  /** Set for Tollgate paths: where its usage rows are counted. */
  readonly tollgate: TollgateServer | null;
  readonly mode: 'static' | 'dynamic';
  readonly keysFile: string;
  /** The key used for the verification requests. */
  readonly verifyKey: string;
  /** Runs once after verification, before the first measurement (e.g. touching every key). */
  readonly prepare?: () => Promise<void>;
  /** Also read the CPU of PostgreSQL and Redis per request (a Tollgate on the shared services). */
  readonly services?: boolean;
}

export interface ScenarioShape {
  readonly name: string;
  readonly body: BodyKind;
  readonly connections: number;
}

interface RoundResult {
  /** 1-minute load average when the measured run started (other work on the machine). */
  readonly load1: number;
  readonly wrk: WrkResult;
  readonly rss: RssSummary;
  /** CPU time of the process under test during the measured run ÷ requests completed, in µs. */
  readonly cpuUsPerReq: number | null;
  readonly servicesUsPerReq: Record<ServiceName, number | null> | null;
  readonly usage: { rowsAdded: number; ok2xx: number } | null;
}

/** Collects the rounds of each path of a scenario (a path may be measured in several phases). */
export class Measurements {
  private readonly rounds = new Map<Target, RoundResult[]>();
  private readonly failures = new Map<Target, string>();
  private readonly verified = new Set<Target>();
  private readonly order: Target[] = [];

  constructor(
    private readonly ctx: BenchContext,
    private readonly scenario: ScenarioShape,
  ) {}

  private remember(t: Target): void {
    if (!this.order.includes(t)) this.order.push(t);
  }

  /** Verifies (once) and measures each target `rounds` times, interleaved: t1 t2 t3 t1 t2 t3 … */
  async phase(targets: readonly Target[]): Promise<void> {
    for (const t of targets) {
      this.remember(t);
      if (this.verified.has(t) || this.failures.has(t)) continue;
      try {
        await verifyPath(t.server.url, t.verifyKey);
        if (t.tollgate) {
          for (const p of governanceProblems(t.tollgate.home)) this.ctx.problem(`${t.label}: ${p}`);
        }
        await t.prepare?.();
        this.verified.add(t);
        log(`  ${t.label}: verified (200 JSON, 200 SSE ending in message_stop)`);
      } catch (error) {
        this.fail(t, `verification failed: ${message(error)}`);
      }
    }
    for (let round = 0; round < this.ctx.opts.rounds; round++) {
      for (const t of targets) {
        if (this.failures.has(t)) continue;
        try {
          const r = await this.once(t);
          const list = this.rounds.get(t) ?? [];
          list.push(r);
          this.rounds.set(t, list);
        } catch (error) {
          this.fail(t, message(error));
        }
      }
    }
  }

  private fail(t: Target, why: string): void {
    this.failures.set(t, why);
    this.ctx.problem(`${this.scenario.name} / ${t.label}: ${why}`);
  }

  private async once(t: Target): Promise<RoundResult> {
    const { opts } = this.ctx;
    const load = {
      url: `${t.server.url}/v1/messages`,
      connections: this.scenario.connections,
      threads: opts.threads,
      durationMs: opts.durationMs,
      mode: t.mode,
      keysFile: t.keysFile,
      bodyFiles: [this.ctx.bodies[this.scenario.body]],
    };
    const db = t.tollgate?.home ?? null;
    const before = db ? countUsageRows(db) : 0;
    const since = Date.now();
    let warmOk = 0;
    if (opts.warmupMs > 0) {
      const warm = await runWrk({ ...load, durationMs: opts.warmupMs });
      warmOk = warm.ok;
      const bad = warm.non2xx + socketErrors(warm);
      if (bad > 0) {
        this.ctx.problem(
          `${this.scenario.name} / ${t.label}: warm-up had ${warm.non2xx} non-2xx answers and ${socketErrors(warm)} socket errors of ${warm.requests}`,
        );
      }
    }
    const load1 = loadavg()[0] ?? Number.NaN;
    const sampler = sampleRss(t.server.managed.pid, 250);
    const cpuBefore = cpuSeconds(t.server.managed.pid);
    const servicesBefore = t.services ? servicesCpu() : null;
    let wrk: WrkResult;
    let rss: RssSummary;
    try {
      wrk = await runWrk(load);
    } finally {
      rss = sampler.stop();
    }
    const cpuAfter = cpuSeconds(t.server.managed.pid);
    const servicesAfter = t.services ? servicesCpu() : null;
    const perRequest = (before: number | null, after: number | null) =>
      before === null || after === null || wrk.requests === 0
        ? null
        : ((after - before) * 1e6) / wrk.requests;
    const servicesUsPerReq =
      servicesBefore && servicesAfter
        ? {
            redis: perRequest(servicesBefore.redis, servicesAfter.redis),
            postgres: perRequest(servicesBefore.postgres, servicesAfter.postgres),
          }
        : null;
    const cpuUsPerReq =
      cpuBefore === null || cpuAfter === null || wrk.requests === 0
        ? null
        : ((cpuAfter - cpuBefore) * 1e6) / wrk.requests;
    if (t.server.managed.exit) {
      const e = t.server.managed.exit;
      throw new Error(
        `${t.label} EXITED during the run (code ${e.code}, signal ${e.signal}); log:\n${logTail(t.server.managed.logFile)}`,
      );
    }
    let usage: RoundResult['usage'] = null;
    if (db) {
      const rowsAdded = countUsageRows(db) - before;
      usage = { rowsAdded, ok2xx: warmOk + wrk.ok };
      if (rowsAdded < warmOk + wrk.ok) {
        this.ctx.problem(
          `${this.scenario.name} / ${t.label}: only ${rowsAdded} usage rows were added for ${warmOk + wrk.ok} 2xx answers (warm-up + run): requests went unrecorded`,
        );
      }
    }
    const bad = wrk.non2xx + socketErrors(wrk);
    if (bad > 0) {
      const details: string[] = [
        `${wrk.non2xx} non-2xx answers and ${socketErrors(wrk)} socket errors (connect ${wrk.errors.connect}, read ${wrk.errors.read}, write ${wrk.errors.write}, timeout ${wrk.errors.timeout}) of ${wrk.requests} requests`,
      ];
      if (db) {
        const statuses = [...usageStatuses(db, since).entries()].map(([s, n]) => `${s}: ${n}`).join(', ');
        details.push(`usage rows by status since the warm-up: ${statuses || 'none'}`);
        details.push(`server log (last lines):\n${logTail(t.server.managed.logFile, 15)}`);
      }
      this.ctx.problem(`${this.scenario.name} / ${t.label} FAILED REQUESTS: ${details.join('\n')}`);
    }
    log(
      `  ${this.scenario.name} / ${t.label}: ${Math.round(wrk.reqPerSec)} req/s, p50 ${wrk.latencyMs.p50.toFixed(2)} ms, p99 ${wrk.latencyMs.p99.toFixed(2)} ms, RSS peak ${rss.peakMb?.toFixed(0) ?? '?'} MB, CPU ${cpuUsPerReq?.toFixed(0) ?? '?'} µs/req${servicesUsPerReq ? ` (+ Redis ${servicesUsPerReq.redis?.toFixed(0) ?? '?'}, PostgreSQL ${servicesUsPerReq.postgres?.toFixed(0) ?? '?'} µs/req)` : ''}${bad > 0 ? `, ${bad} FAILED` : ''}`,
    );
    return { load1, wrk, rss, cpuUsPerReq, servicesUsPerReq, usage };
  }

  rows(): Row[] {
    return this.order.map((t) => {
      const list = this.rounds.get(t) ?? [];
      const failed = this.failures.get(t) ?? (list.length === 0 ? 'not measured' : null);
      const pick = (f: (l: WrkResult['latencyMs']) => number) =>
        round(median(list.map((r) => f(r.wrk.latencyMs))), 3);
      const latency: Latency | null =
        list.length === 0
          ? null
          : {
              p50: pick((l) => l.p50),
              p90: pick((l) => l.p90),
              p99: pick((l) => l.p99),
              p999: pick((l) => l.p999),
              max: pick((l) => l.max),
            };
      const peaks = list.map((r) => r.rss.peakMb).filter((v): v is number => v !== null);
      const usage = t.tollgate
        ? {
            rowsAdded: list.reduce((n, r) => n + (r.usage?.rowsAdded ?? 0), 0),
            ok2xx: list.reduce((n, r) => n + (r.usage?.ok2xx ?? 0), 0),
          }
        : null;
      return {
        scenario: this.scenario.name,
        path: t.label,
        kind: t.kind,
        rounds: list.length,
        requests: list.reduce((n, r) => n + r.wrk.requests, 0),
        reqPerSec: list.length === 0 ? null : round(median(list.map((r) => r.wrk.reqPerSec)), 1),
        latencyMs: latency,
        rssPeakMb: peaks.length === 0 ? null : round(Math.max(...peaks), 1),
        rssEndMb: nullableRound(list.at(-1)?.rss.endMb ?? null),
        cpuUsPerReq: medianOrNull(list.map((r) => r.cpuUsPerReq)),
        servicesUsPerReq: t.services
          ? {
              redis: medianOrNull(list.map((r) => r.servicesUsPerReq?.redis ?? null)),
              postgres: medianOrNull(list.map((r) => r.servicesUsPerReq?.postgres ?? null)),
            }
          : null,
        non2xx: list.reduce((n, r) => n + r.wrk.non2xx, 0),
        socketErrors: list.reduce((n, r) => n + socketErrors(r.wrk), 0),
        vsProxy: null,
        usage,
        loadAverages: list.map((r) => round(r.load1, 2)),
        failed: list.length > 0 && !this.failures.has(t) ? null : failed,
      };
    });
  }
}

function medianOrNull(values: ReadonlyArray<number | null>): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length === 0 ? null : round(median(known), 1);
}

function nullableRound(value: number | null): number | null {
  return value === null ? null : round(value, 1);
}

function socketErrors(w: WrkResult): number {
  return w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
