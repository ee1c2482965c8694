// Several Tollgate servers in this process (real HTTP servers, gateways on) sharing one installation:
// one PostgreSQL schema, one master key and optionally one Redis, in front of one fake upstream. The
// first instance creates the installation; the others open it, as further `tollgate serve`s would.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { createApiDeps } from '../../src/api/api-deps.js';
import { type Config, loadConfig } from '../../src/config/load.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { buildServer } from '../../src/http/server.js';
import { type Installation, initInstallation, openInstallation } from '../../src/install/installation.js';
import { createLogger } from '../../src/observability/logger.js';
import { createServices, type Services } from '../../src/services.js';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';

export interface Instance {
  url: string;
  config: Config;
  installation: Installation;
  services: Services;
  gateway: Gateway;
  client(key: string): Anthropic;
  close(): Promise<void>;
}

export interface Instances {
  fake: FakeUpstream;
  list: Instance[];
  /** The environment a CLI command beside the servers would have (same database, key and Redis). */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startInstances(options: {
  count: number;
  databaseUrl: string;
  /** The Redis every instance announces and hears changes on; omitted: they poll only. */
  redisUrl?: string;
  changePollMs?: number;
}): Promise<Instances> {
  const fake = await startFakeUpstream();
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-instances-'));
  const env: Record<string, string> = {
    TOLLGATE_HOME: join(dir, 'cli-home'),
    TOLLGATE_TEST_CWD: dir,
    TOLLGATE_DATABASE_URL: options.databaseUrl,
    TOLLGATE_MASTER_KEY: randomBytes(32).toString('base64'),
    TOLLGATE_UPSTREAM_URL: fake.url,
    ...(options.redisUrl === undefined ? {} : { TOLLGATE_REDIS_URL: options.redisUrl }),
  };
  const list: Instance[] = [];
  try {
    for (let i = 0; i < options.count; i++) {
      list.push(
        await startInstance({ ...env, TOLLGATE_HOME: join(dir, `home-${i}`) }, dir, i === 0, options),
      );
    }
  } catch (error) {
    for (const instance of list) await instance.close();
    await fake.close();
    throw error;
  }
  return {
    fake,
    list,
    env,
    async close() {
      for (const instance of list) await instance.close();
      await fake.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function startInstance(
  env: Record<string, string>,
  cwd: string,
  first: boolean,
  options: { changePollMs?: number },
): Promise<Instance> {
  const config = await loadConfig({ env, cwd });
  const clock = Date.now;
  const installation = first
    ? (await initInstallation(config, clock, 'test')).installation
    : await openInstallation(config);
  const services = createServices(installation, config, clock);
  const logger = createLogger('silent');
  const gateway = createGateway(
    { installation, clock },
    config,
    options.changePollMs === undefined ? { logger } : { logger, changePollMs: options.changePollMs },
  );
  await gateway.start();
  const app = await buildServer({
    installation,
    logger,
    bodyLimit: config.server.body_limit_bytes,
    trustProxy: false,
    version: 'test',
    gateway,
    enroll: { installation, config, clock },
    api: createApiDeps(installation, config, clock, gateway, logger),
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    config,
    installation,
    services,
    gateway,
    client: (key) => new Anthropic({ apiKey: key, baseURL: url, maxRetries: 0, timeout: 10_000 }),
    async close() {
      await app.close();
      await gateway.close();
      await installation.close();
    },
  };
}
