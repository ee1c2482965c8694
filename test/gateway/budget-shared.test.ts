// The gateway on the shared budget book (redis.url set), driven by the official SDK: budget refusals
// read as with the in-process book, and when Redis stops answering every request fails closed with an
// Anthropic-shaped 503 naming budgets, until Redis answers again. Redis is reached through a TCP relay
// the test can cut (as a network failure would).
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/redis/connect.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

const REDIS_URL = process.env.TOLLGATE_TEST_REDIS_URL;
const REDIS_DB = 12;
const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 40,
  messages: [{ role: 'user' as const, content: 'shared [[fake output_tokens=40]]' }],
};

/** A TCP relay to Redis that can be cut (open connections destroyed, new ones refused) and restored. */
async function relay(target: URL) {
  let up = true;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (!up) {
      client.destroy();
      return;
    }
    const upstream = createConnection(Number(target.port || 6379), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}/${REDIS_DB}`,
    cut() {
      up = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      up = true;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.skipIf(!REDIS_URL)('the gateway with budgets in Redis', () => {
  let h: Harness;
  let link: Awaited<ReturnType<typeof relay>>;

  beforeAll(async () => {
    link = await relay(new URL(REDIS_URL ?? ''));
    h = await startHarness({ env: { TOLLGATE_REDIS_URL: link.url } });
    await h.orgCredential();
  });
  afterAll(async () => {
    await h.close();
    // This file's own database: emptied after use.
    const direct = await connectRedis(link.url);
    await direct.flushdb();
    direct.disconnect();
    await link.close();
  });

  it('refuses an exhausted budget with the same 429 as the in-process book', async () => {
    const key = await h.key({ user: 'bea', policy: { monthlyBudgetMicro: 1 } });
    const refused = await h
      .client(key)
      .messages.create(PARAMS)
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Anthropic.RateLimitError);
    const error = refused as InstanceType<typeof Anthropic.RateLimitError>;
    expect(error.headers?.get('x-should-retry')).toBe('false');
    expect(error.message).toMatch(
      /the monthly budget of key key_\w+ \(\$0\.000001\) cannot cover this request/,
    );
  });

  it('fails closed with a 503 naming budgets while Redis does not answer, and serves again once it does', async () => {
    const key = await h.key({ user: 'cal' });
    // Positive control: served.
    await expect(h.client(key).messages.create(PARAMS)).resolves.toMatchObject({ type: 'message' });
    const served = h.fake.served.length;
    link.cut();
    const refused = await h
      .client(key)
      .messages.create(PARAMS)
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Anthropic.InternalServerError);
    const error = refused as InstanceType<typeof Anthropic.InternalServerError>;
    expect(error.status).toBe(503);
    expect(error.message).toMatch(
      /budgets cannot be checked: the shared budget store \(Redis\) is unreachable/,
    );
    // The cause (address, error) goes to the log, never to the client.
    expect(error.message).not.toMatch(/127\.0\.0\.1|ECONN|closed/i);
    expect(error.error).toMatchObject({
      type: 'error',
      error: { type: 'api_error', details: { error_code: 'budgets_unavailable' } },
    });
    // Nothing went upstream.
    expect(h.fake.served.length).toBe(served);
    link.restore();
    const until = Date.now() + 10_000;
    for (;;) {
      const ok = await h
        .client(key)
        .messages.create(PARAMS)
        .then(() => true)
        .catch((e: unknown) => {
          if (Date.now() > until) throw e;
          return false;
        });
      if (ok) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });
});
