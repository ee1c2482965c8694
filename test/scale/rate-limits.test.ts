// Rate limits shared across gateway instances through Redis, driven by the official SDK against the
// fake upstream: three gateways over one installation, each with its own Redis connection and one key
// prefix. A 10 RPM key lets 10 requests through across the three (the same set-up without Redis lets
// 30: the limits were per instance); refusals carry retry-after and today's headers; concurrency and
// output tokens are shared; an unreachable Redis is a 503 that sends nothing upstream.
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/redis/connect.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { call, type Instance, type Outcome, startInstance } from '../helpers/gateway-instances.js';
import { dropPrefix, REDIS_URL, testPrefix } from '../helpers/redis-keys.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

/** 30 requests at once, spread round-robin over the instances. */
function burst(urls: readonly string[], key: string, n = 30): Promise<Outcome[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => call(urls[i % urls.length] as string, key)));
}

const messagesServed = (h: Harness) => h.fake.served.filter((r) => r.path === '/v1/messages').length;

describe.skipIf(!REDIS_URL)('rate limits shared across instances (Redis)', () => {
  const prefix = testPrefix('rl-scale');
  let h: Harness;
  let others: Instance[] = [];
  let urls: string[] = [];

  beforeAll(async () => {
    h = await startHarness({
      env: { TOLLGATE_REDIS_URL: REDIS_URL as string, TOLLGATE_REDIS_KEY_PREFIX: prefix },
    });
    await h.orgCredential();
    others = [await startInstance(h), await startInstance(h)];
    urls = [h.url, ...others.map((o) => o.url)];
  });
  afterAll(async () => {
    for (const o of others) await o.close();
    await h?.close();
    const redis = await connectRedis(REDIS_URL as string);
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  it('a 10 RPM key lets 10 of 30 requests through across three instances; the rest carry retry-after', async () => {
    const key = await h.key({ user: 'rpm10', policy: { rpm: 10 } });
    const before = messagesServed(h);
    const outcomes = await burst(urls, key);
    const ok = outcomes.filter((o) => o.status === 200);
    const refused = outcomes.filter((o) => o.status !== 200);
    expect(ok).toHaveLength(10);
    expect(messagesServed(h) - before).toBe(10);
    // One shared count: the answers' remaining figures are 9 … 0, each once, whichever instance answered.
    const remaining = ok.map((o) => Number(o.headers.get('anthropic-ratelimit-requests-remaining')));
    expect(remaining.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const o of ok) expect(o.headers.get('anthropic-ratelimit-requests-limit')).toBe('10');
    expect(refused).toHaveLength(20);
    for (const o of refused) {
      expect(o.status).toBe(429);
      const retry = Number(o.headers.get('retry-after'));
      expect(retry).toBeGreaterThanOrEqual(50);
      expect(retry).toBeLessThanOrEqual(60);
      expect(o.headers.get('anthropic-ratelimit-requests-limit')).toBe('10');
      expect(o.headers.get('anthropic-ratelimit-requests-remaining')).toBe('0');
      const reset = Date.parse(o.headers.get('anthropic-ratelimit-requests-reset') ?? '');
      expect(reset - Date.now()).toBeGreaterThan(40_000);
    }
    // A key of its own is not held back by the first key's refusals (positive control).
    const fresh = await h.key({ user: 'rpm10b', policy: { rpm: 10 } });
    expect((await call(urls[2] as string, fresh)).status).toBe(200);
  });

  it('concurrency is shared: a slot held on one instance refuses the next on another until it ends', async () => {
    const key = await h.key({ user: 'conc1', policy: { concurrency: 1 } });
    const slow = new Anthropic({ apiKey: key, baseURL: urls[0], maxRetries: 0 }).messages.stream({
      ...PARAMS,
      max_tokens: 40,
      messages: [{ role: 'user', content: 'x [[fake fault=slow-stream delay_ms=40 output_tokens=30]]' }],
    });
    await new Promise<void>((resolve) => slow.once('streamEvent', () => resolve()));
    const refused = await call(urls[1] as string, key);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    await slow.finalMessage();
    expect(await eventually(async () => (await call(urls[2] as string, key)).status)).toBe(200);
  });

  it('output tokens are charged at max_tokens on one instance and corrected at finish for all', async () => {
    const key = await h.key({ user: 'otpm', policy: { outputTpm: 1000 } });
    const big = { ...PARAMS, max_tokens: 800 };
    const slow = new Anthropic({ apiKey: key, baseURL: urls[0], maxRetries: 0 }).messages.stream({
      ...big,
      messages: [{ role: 'user', content: 'x [[fake fault=slow-stream delay_ms=40 output_tokens=20]]' }],
    });
    await new Promise<void>((resolve) => slow.once('streamEvent', () => resolve()));
    const refused = await call(urls[1] as string, key, big);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('anthropic-ratelimit-output-tokens-limit')).toBe('1000');
    expect(refused.headers.get('anthropic-ratelimit-output-tokens-remaining')).toBe('200');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    await slow.finalMessage();
    // 20 tokens written of the 800 charged: another 800 now fits, on any instance.
    expect(await eventually(async () => (await call(urls[2] as string, key, big)).status)).toBe(200);
  });

  it('Redis unreachable: a rate-limited key gets a 503 saying limits cannot be checked; nothing goes upstream', async () => {
    const proxy = await startProxy(new URL(REDIS_URL as string));
    const cut = await startInstance(h, {
      ...h.config,
      redis: { ...h.config.redis, url: `redis://127.0.0.1:${proxy.port}` },
    });
    try {
      const key = await h.key({ user: 'down', policy: { rpm: 100 } });
      expect((await call(cut.url, key)).status).toBe(200); // positive control
      await proxy.stop();
      const before = messagesServed(h);
      const client = new Anthropic({ apiKey: key, baseURL: cut.url, maxRetries: 0 });
      const error = await client.messages.create(PARAMS).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Anthropic.APIError);
      const e = error as InstanceType<typeof Anthropic.APIError>;
      expect(e.status).toBe(503);
      expect(e.headers?.get('retry-after')).toBe('1');
      expect(e.error).toMatchObject({
        type: 'error',
        error: {
          type: 'api_error',
          message: expect.stringContaining('rate limits cannot be checked'),
          details: { error_code: 'redis_unavailable' },
        },
      });
      expect(messagesServed(h)).toBe(before);
      // Redis back: the connection heals on its own.
      await proxy.start();
      expect(await eventually(async () => (await call(cut.url, key)).status, 8_000)).toBe(200);
    } finally {
      await cut.close();
      await proxy.stop();
    }
  });
});

describe('rate limits without Redis (control)', () => {
  it('three instances without Redis each keep their own count: 30 of 30 through at 10 RPM', async () => {
    const h = await startHarness();
    const others = [await startInstance(h), await startInstance(h)];
    try {
      await h.orgCredential();
      const key = await h.key({ user: 'rpm10', policy: { rpm: 10 } });
      const outcomes = await burst([h.url, ...others.map((o) => o.url)], key);
      expect(outcomes.filter((o) => o.status === 200)).toHaveLength(30);
    } finally {
      for (const o of others) await o.close();
      await h.close();
    }
  });
});

/** Polls `f` until it gives 200 or `ms` pass; returns its last answer. */
async function eventually(f: () => Promise<number>, ms = 3_000): Promise<number> {
  const until = Date.now() + ms;
  let last = await f();
  while (last !== 200 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    last = await f();
  }
  return last;
}

/** A TCP relay to Redis that can be cut (every connection dropped, nothing listening) and restored. */
async function startProxy(target: URL) {
  let server: Server | null = null;
  const sockets = new Set<Socket>();
  let port = 0;
  const start = async () => {
    const s = createServer((client) => {
      const upstream = tcpConnect(Number(target.port || 6379), target.hostname);
      for (const sock of [client, upstream]) {
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        sock.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', resolve));
    port = (s.address() as { port: number }).port;
    server = s;
  };
  await start();
  return {
    get port() {
      return port;
    },
    start,
    async stop() {
      const s = server;
      server = null;
      for (const sock of sockets) sock.destroy();
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
}
