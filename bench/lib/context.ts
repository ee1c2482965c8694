// What every scenario shares during one bench run: options, temp dir, request bodies, the long-lived
// fake upstream and pass-through proxy, the main Tollgate (started on first use) and the problems found.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { waitIdle } from './cpu.js';
import { createPgSchema, dashboardPgUrl, type PgSchema, pgUnreachable } from './dashboard-db.js';
import { type MetricsSide, startMetricsSide } from './metrics-side.js';
import type { Options } from './options.js';
import { type Managed, startLogged, stop, waitForListening } from './procs.js';
import { redisUnreachable } from './redis.js';
import { type BodyKind, writeBodies } from './requests.js';
import { createHome, serve, type TollgateHome } from './tollgate.js';
import { BENCH_DIST, log, ROOT } from './util.js';

export interface Server {
  readonly label: string;
  readonly managed: Managed;
  readonly url: string;
}

export interface TollgateServer extends Server {
  readonly home: TollgateHome;
  /** The home's key in a one-line file, for wrk. */
  readonly keyFile: string;
}

/** An upstream key the fake accepts (any `sk-ant-api03-test…`). */
export function fakeKey(i: number): string {
  return `sk-ant-api03-test-bench-${String(i).padStart(6, '0')}`;
}

export class BenchContext {
  readonly bodies: Record<BodyKind, string>;
  readonly problems: string[] = [];
  /** One-line file with a fake upstream key (direct and proxy paths). */
  readonly fakeKeyFile: string;
  fake: Server | null = null;
  proxy: Server | null = null;
  /** With --metrics: the OTLP collector stub and the scrapers. */
  metrics: MetricsSide | null = null;
  private main: TollgateServer | null = null;
  /** With --metrics: a second Tollgate like the main one, with its metrics on (OTLP push, scraped). */
  private monitored: TollgateServer | null = null;
  private counter = 0;
  private shared: { server: TollgateServer; schema: PgSchema } | null = null;

  constructor(
    readonly opts: Options,
    readonly tmp: string,
  ) {
    this.bodies = writeBodies(tmp);
    this.fakeKeyFile = join(tmp, 'keys-fake-1.txt');
    writeFileSync(this.fakeKeyFile, `${fakeKey(1)}\n`);
  }

  problem(text: string): void {
    this.problems.push(text);
    log(`  !! ${text.split('\n')[0]}`);
  }

  file(name: string): string {
    return join(this.tmp, name);
  }

  /** Starts `node dist/bench/bench/servers/NAME.js ARGS…` and waits for it to listen. */
  async startNodeServer(
    label: string,
    script: string,
    args: readonly string[],
    profiled = false,
  ): Promise<Server> {
    const nodeArgs = profiled ? this.profileArgs() : [];
    const managed = startLogged(
      label,
      process.execPath,
      [...nodeArgs, join(BENCH_DIST, 'servers', script), ...args],
      {
        env: process.env,
        cwd: ROOT,
        logFile: this.file(`${script.replace(/\.js$/, '')}.log`),
      },
    );
    const url = await waitForListening(managed, 15_000);
    log(`  ${label} listening on ${url} (pid ${managed.pid})`);
    // Work a server does after it listens (compressing the dashboard's assets) must not be measured.
    const settled = await waitIdle(managed.pid);
    log(`  ${label}: idle after ${(settled / 1000).toFixed(1)} s`);
    return { label, managed, url };
  }

  async startFakeAndProxy(): Promise<void> {
    this.fake = await this.startNodeServer('fake (direct)', 'fake.js', []);
    this.proxy = await this.startNodeServer('proxy', 'proxy.js', [this.fake.url], true);
    if (this.opts.metrics) {
      this.metrics = await startMetricsSide();
      log(
        `  OTLP collector stub listening on ${this.metrics.url} (Tollgate exports every 1 s; /metrics scraped every 1 s)`,
      );
    }
  }

  /** With --profile, the node options that write a CPU profile on exit (not allowed in NODE_OPTIONS). */
  profileArgs(): string[] {
    const dir = this.opts.profile;
    if (dir === null) return [];
    mkdirSync(dir, { recursive: true });
    return ['--cpu-prof', `--cpu-prof-dir=${resolve(dir)}`];
  }

  fakeUrl(): string {
    if (!this.fake) throw new Error('the fake upstream is not running');
    return this.fake.url;
  }

  /**
   * A new Tollgate installation (through the CLI) served in its own process; with `metrics`, pushing
   * OTLP to the collector stub and scraped every second (only with --metrics).
   */
  async startTollgate(
    label: string,
    name: string,
    prepare?: (home: TollgateHome) => Promise<void>,
    metrics = false,
    shared: { databaseUrl: string; redisUrl: string | null } | null = null,
  ): Promise<TollgateServer> {
    const dir = this.file(`tollgate-${name}-${++this.counter}`);
    const started = Date.now();
    const home = await createHome(dir, name, this.fakeUrl(), shared);
    log(`  ${label}: installation ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${home.home})`);
    if (prepare) await prepare(home);
    return this.serveHome(label, home, metrics);
  }

  async serveHome(label: string, home: TollgateHome, metrics = false): Promise<TollgateServer> {
    const logFile = join(home.home, '..', `serve-${Date.now()}.log`);
    const side = metrics ? this.metrics : null;
    const served = side ? { ...home, env: { ...home.env, ...side.env } } : home;
    const { managed, url } = await serve(served, logFile, [...this.opts.nodeArgs, ...this.profileArgs()]);
    log(`  ${label} listening on ${url} (pid ${managed.pid})`);
    // Work a server does after it listens (compressing the dashboard's assets) must not be measured.
    const settled = await waitIdle(managed.pid);
    log(`  ${label}: idle after ${(settled / 1000).toFixed(1)} s`);
    side?.scrape(url, managed);
    const keyFile = join(home.home, '..', 'key.txt');
    writeFileSync(keyFile, `${home.key}\n`);
    return { label, managed, url, home, keyFile };
  }

  /** The main Tollgate (one key), shared by the scenarios that do not need a special installation. */
  async mainTollgate(): Promise<TollgateServer> {
    if (!this.main || this.main.managed.exit) this.main = await this.startTollgate('tollgate', 'main');
    return this.main;
  }

  /** With --metrics: the main Tollgate's twin with its metrics on, or null without --metrics. */
  async monitoredTollgate(): Promise<TollgateServer | null> {
    if (!this.metrics) return null;
    if (!this.monitored || this.monitored.managed.exit)
      this.monitored = await this.startTollgate('tollgate + metrics', 'metrics', undefined, true);
    return this.monitored;
  }

  async stopMainTollgate(): Promise<void> {
    for (const server of [this.main, this.monitored]) if (server) await stop(server.managed);
    this.main = null;
    this.monitored = null;
  }

  /**
   * A Tollgate on PostgreSQL (a throw-away schema) and Redis (its own database, emptied first), shared
   * by the shared-* scenarios; the schema is dropped by `stopAll` unless --keep.
   */
  async sharedTollgate(): Promise<TollgateServer> {
    if (this.shared && !this.shared.server.managed.exit) return this.shared.server;
    const base = dashboardPgUrl();
    const down = await pgUnreachable(base);
    if (down) throw new Error(down);
    // --redis-url none: PostgreSQL alone (budgets and rate limits in process), to see what Redis costs.
    const redisUrl = this.opts.redisUrl === 'none' ? null : this.opts.redisUrl;
    if (redisUrl !== null) {
      const redis = await redisUnreachable(redisUrl);
      if (redis) throw new Error(redis);
    }
    const schema = await createPgSchema(base);
    const server = await this.startTollgate('tollgate (PostgreSQL + Redis)', 'shared', undefined, false, {
      databaseUrl: schema.url,
      redisUrl,
    });
    this.shared = { server, schema };
    return server;
  }

  async stopShared(): Promise<void> {
    if (!this.shared) return;
    await stop(this.shared.server.managed);
    if (this.opts.keep) log(`  shared: schema ${this.shared.schema.name} kept (--keep)`);
    else await this.shared.schema.drop();
    this.shared = null;
  }
}
