// Three `tollgate serve` processes on one PostgreSQL database and one Redis, driven by the official SDK
// against the fake upstream: a 10 RPM key lets at most 10 of 33 concurrent requests through across the
// three, the refused ones carry retry-after and the anthropic-ratelimit-requests-* headers, and a key of
// its own still passes beside them.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/redis/connect.js';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { call } from '../helpers/gateway-instances.js';
import { createPgSchema, PG_URL, type PgSchema } from '../helpers/pg.js';
import { dropPrefix, REDIS_URL, testPrefix } from '../helpers/redis-keys.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tollgate.js');

interface Server {
  child: ChildProcess;
  url: string;
  output: () => string;
}

function serve(home: string, env: Record<string, string>): Promise<Server> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
    cwd: tmpdir(),
    env: { PATH: process.env.PATH ?? '', TOLLGATE_HOME: home, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30_000);
    child.stdout?.on('data', () => {
      const match = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve({ child, url: match[1], output: () => output });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited ${code}:\n${output}`));
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

describe.skipIf(!REDIS_URL || !PG_URL)('three serve processes share rate limits through Redis', () => {
  const prefix = testPrefix('rl-procs');
  let dir: string;
  let schema: PgSchema;
  let fake: FakeUpstream;
  const servers: Server[] = [];
  let adminToken = '';

  const admin = async (path: string, body: unknown) => {
    const response = await fetch(`${servers[0]?.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-rl-procs-'));
    schema = await createPgSchema(PG_URL as string);
    fake = await startFakeUpstream();
    const env = {
      TOLLGATE_DATABASE_URL: schema.url,
      TOLLGATE_REDIS_URL: REDIS_URL as string,
      TOLLGATE_REDIS_KEY_PREFIX: prefix,
      TOLLGATE_UPSTREAM_URL: fake.url,
      // One installation, three "machines": each its own home, the same master key.
      TOLLGATE_MASTER_KEY: randomBytes(32).toString('base64'),
    };
    const first = await serve(join(dir, 'a'), env);
    servers.push(first);
    adminToken = /\n\s+(tga_[A-Za-z0-9]+)\n/.exec(first.output())?.[1] ?? '';
    servers.push(await serve(join(dir, 'b'), env), await serve(join(dir, 'c'), env));
  }, 120_000);
  afterAll(async () => {
    for (const s of servers) await stop(s.child);
    await fake?.close();
    await schema?.drop();
    const redis = await connectRedis(REDIS_URL as string);
    await dropPrefix(redis, prefix);
    redis.disconnect();
    await rm(dir, { recursive: true, force: true });
  });

  it('a 10 RPM key lets at most 10 of 33 concurrent requests through across the three', async () => {
    expect(adminToken).toMatch(/^tga_/);
    expect(
      (
        await admin('/admin/v1/credentials', {
          name: 'org',
          provider: 'anthropic',
          secret: canaryAnthropicKey(),
        })
      ).status,
    ).toBe(201);
    expect((await admin('/admin/v1/users', { name: 'alice', team: null })).status).toBe(201);
    const issued = await admin('/admin/v1/keys', { user: 'alice', rpm: 10 });
    const control = await admin('/admin/v1/keys', { user: 'alice', rpm: 10 });
    const key = issued.json.key as string;
    // Every server sees the new key (the change feed reaches them within a second).
    for (const s of servers) {
      const deadline = Date.now() + 5_000;
      while (
        (await fetch(`${s.url}/v1/models`, { headers: { 'x-api-key': control.json.key as string } }))
          .status === 401
      ) {
        if (Date.now() > deadline) throw new Error(`${s.url} never saw the key`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const served = () => fake.served.filter((r) => r.path === '/v1/messages').length;
    const before = served();
    const outcomes = await Promise.all(
      Array.from({ length: 33 }, (_, i) => call((servers[i % 3] as Server).url, key)),
    );
    const ok = outcomes.filter((o) => o.status === 200);
    const refused = outcomes.filter((o) => o.status !== 200);
    expect(ok.length).toBe(10);
    expect(served() - before).toBe(10);
    const remaining = ok.map((o) => Number(o.headers.get('anthropic-ratelimit-requests-remaining')));
    expect(remaining.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Every server refused some: the limit was one across the three, not one per server. Each server
    // gets 11, so even one that took all 10 slots refused one, however the requests fall.
    for (const [i, s] of servers.entries()) {
      const mine = outcomes.filter((_, j) => j % 3 === i);
      expect(
        mine.some((o) => o.status === 429),
        `${s.url} refused none`,
      ).toBe(true);
    }
    for (const o of refused) {
      expect(o.status).toBe(429);
      const retry = Number(o.headers.get('retry-after'));
      expect(retry).toBeGreaterThanOrEqual(50);
      expect(retry).toBeLessThanOrEqual(60);
      expect(o.headers.get('anthropic-ratelimit-requests-limit')).toBe('10');
      expect(o.headers.get('anthropic-ratelimit-requests-remaining')).toBe('0');
      expect(o.headers.get('anthropic-ratelimit-requests-reset')).toMatch(
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
      );
    }
    // Positive control: another 10 RPM key passes on every server beside the refusals.
    for (const s of servers) expect((await call(s.url, control.json.key as string)).status).toBe(200);
  });
});
