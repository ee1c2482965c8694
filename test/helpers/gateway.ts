// A running Tollgate (real HTTP server, gateway on) in front of the in-repo fake upstream, with an
// installation in a temp home and helpers to create users, credentials and keys.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Anthropic from '@anthropic-ai/sdk';
import type { AlertOptions } from '../../src/alerts/alerts.js';
import { createApiDeps } from '../../src/api/api-deps.js';
import { type Config, loadConfig } from '../../src/config/load.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import type { ServerTimeouts } from '../../src/http/limits.js';
import { buildServer, registeredRoutes } from '../../src/http/server.js';
import { type Installation, initInstallation } from '../../src/install/installation.js';
import type { Clock } from '../../src/lib/clock.js';
import { createLogger } from '../../src/observability/logger.js';
import { createServices, type Services } from '../../src/services.js';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { canaryAnthropicKey } from './secrets.js';

/** JSON of an API answer, read field by field in tests. */
// biome-ignore lint/suspicious/noExplicitAny: test convenience; assertions check every field they read
export type ApiJson = any;

export interface Harness {
  url: string;
  fake: FakeUpstream;
  config: Config;
  installation: Installation;
  services: Services;
  gateway: Gateway;
  logs(): string;
  admin: { actor: string };
  /** The installation's admin token (Authorization: Bearer … on /admin/v1). */
  adminToken: string;
  /**
   * Calls the admin or self-service API with JSON. `token` defaults to the installation's admin token;
   * '' sends no Authorization header.
   */
  api(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown },
  ): Promise<{ status: number; json: ApiJson; headers: Headers }>;
  /** Every route the server registered, as `METHOD /path`. */
  routes(): readonly string[];
  /** Adds an org credential (validated against the fake) and returns its secret. */
  orgCredential(name?: string): Promise<string>;
  /** A user (created if missing) and a fresh key for them. */
  key(options?: {
    user?: string;
    team?: string | null;
    policy?: Parameters<Services['keys']['issue']>[1]['policy'];
    credential?: string;
  }): Promise<string>;
  client(key: string, options?: { maxRetries?: number; timeout?: number }): Anthropic;
  /** Applies CLI-side changes now instead of waiting for the poller. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(
  options: {
    env?: Record<string, string>;
    clock?: Clock;
    fakeOptions?: Parameters<typeof startFakeUpstream>[0];
    /** A tollgate.yml to load (written to the temp directory and named by TOLLGATE_CONFIG). */
    yaml?: string;
    /** Listen on this port instead of any free one (when public_url must be known in advance). */
    port?: number;
    /** Timeouts and backoff of the alerts (src/alerts). */
    alerts?: AlertOptions;
    /** The server's connection timeouts (src/http/limits.ts); its defaults when absent. */
    timeouts?: ServerTimeouts;
    /** The upstream URL the gateway is given, from the fake's (e.g. a name only a proxy resolves). */
    upstreamUrl?: (fakeUrl: string) => string;
  } = {},
): Promise<Harness> {
  const fake = await startFakeUpstream(options.fakeOptions);
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-gw-'));
  const configFile = join(dir, 'tollgate.yml');
  if (options.yaml !== undefined) await writeFile(configFile, options.yaml);
  const env = {
    TOLLGATE_HOME: join(dir, 'home'),
    TOLLGATE_UPSTREAM_URL: options.upstreamUrl ? options.upstreamUrl(fake.url) : fake.url,
    ...(options.yaml === undefined ? {} : { TOLLGATE_CONFIG: configFile }),
    ...options.env,
  };
  const config = await loadConfig({ env, cwd: dir });
  const clock = options.clock ?? Date.now;
  const { installation, adminToken } = await initInstallation(config, clock, 'test');
  const services = createServices(installation, config, clock);
  let logText = '';
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      logText += chunk.toString();
      done();
    },
  });
  const logger = createLogger('info', sink);
  const gateway = createGateway({ installation, clock }, config, { alerts: options.alerts ?? {} });
  await gateway.start();
  const app = await buildServer({
    installation,
    logger,
    bodyLimit: config.server.body_limit_bytes,
    // Wired from the config as `tollgate serve` does.
    trustProxy: config.server.trust_proxy,
    publicUrl: config.server.public_url,
    corsOrigins: config.server.cors_origins,
    ...(options.timeouts === undefined ? {} : { timeouts: options.timeouts }),
    version: 'test',
    gateway,
    enroll: { installation, config, clock },
    api: createApiDeps(installation, config, clock, gateway, logger),
  });
  const url = await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  const admin = { actor: 'test-admin' };

  return {
    url,
    fake,
    adminToken,
    routes: () => registeredRoutes(app),
    async api(method: string, path: string, o: { token?: string; body?: unknown } = {}) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: {
          ...(o.token === undefined
            ? { authorization: `Bearer ${adminToken}` }
            : o.token === ''
              ? {}
              : { authorization: `Bearer ${o.token}` }),
          ...(o.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
      });
      const text = await response.text();
      let json: unknown = null;
      try {
        json = text === '' ? null : JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: response.status, json, headers: response.headers };
    },
    config,
    installation,
    services,
    gateway,
    logs: () => logText,
    admin,
    async orgCredential(name = 'org-key') {
      const secret = canaryAnthropicKey();
      await services.credentials.add(admin, { name, provider: 'anthropic', secret, validate: true });
      return secret;
    },
    async key(o = {}) {
      const user = o.user ?? 'alice';
      const existing = await services.users.list();
      if (!existing.some((u) => u.name === user)) {
        if (o.team && !(await services.teams.list()).some((t) => t.name === o.team))
          await services.teams.add(admin, { name: o.team });
        await services.users.add(admin, { name: user, team: o.team ?? null, monthlyBudgetMicro: null });
      }
      const issued = await services.keys.issue(admin, {
        user,
        policy: o.policy ?? {},
        credential: o.credential ?? null,
      });
      return issued.key;
    },
    client(key, o = {}) {
      return new Anthropic({
        apiKey: key,
        baseURL: url,
        maxRetries: o.maxRetries ?? 0,
        timeout: o.timeout ?? 20_000,
      });
    },
    refresh: () => gateway.refresh(),
    async close() {
      await app.close();
      await gateway.close();
      await installation.close();
      await fake.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An SDK client against the harness that records the HTTP status of every attempt it makes. */
export function countingClient(h: Pick<Harness, 'url'>, key: string, maxRetries: number) {
  const statuses: number[] = [];
  const client = new Anthropic({
    apiKey: key,
    baseURL: h.url,
    maxRetries,
    fetch: async (input: string | URL | Request, init?: RequestInit) => {
      const response = await fetch(input, init);
      statuses.push(response.status);
      return response;
    },
  });
  return { client, statuses };
}
