// The shared steps against a real Redis: the request slot, the token lanes and the budgets asked in one
// script take all or nothing; a request refused on its tokens or budget still counts this minute (as
// when its slot was taken alone) but holds no slot; the finish and the settlement in one script free
// the slot, correct the tokens and settle the spend, once; and the answers match the steps run one by one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropPrefix, REDIS_URL, testPrefix } from '../../test/helpers/redis-keys.js';
import { sharedStores } from '../../test/helpers/shared-stores.js';
import { redisThroughRelay } from '../../test/helpers/tcp-proxy.js';
import { type ScopeLimits, scopeLimits } from '../budgets/budget-book.js';
import { createRedisBudgetBook } from '../budgets/redis-budget-book.js';
import type { RateLimits, RateRefusal } from '../ratelimit/rate-limiter.js';
import { createRedisRateLimiter } from '../ratelimit/redis-limiter.js';
import { connectRedis, type Redis } from '../redis/connect.js';
import { createSharedSteps } from './shared-steps.js';

const now = Date.UTC(2026, 10, 22, 12);
const monthStart = Date.UTC(2026, 10, 1);
const prefix = testPrefix('steps');

describe.skipIf(!REDIS_URL)('the shared steps (Redis)', () => {
  let redis: Redis;
  const closers: (() => Promise<void>)[] = [];
  let seq = 0;

  /** A limiter and a book on one connection, as the gateway builds them, and their shared steps. */
  async function stores(connection: Redis = redis) {
    const p = `${prefix}${++seq}:`;
    const { limiter, book, steps, close } = await sharedStores(connection, p);
    closers.push(close);
    const used = async (scope: string, id: string) =>
      Number((await redis.hget(`${p}budget:c:${scope}:${id}`, `m${monthStart}`)) ?? -1);
    const inFlight = (key: string) => redis.zcard(`${p}rl:{${key}}:flight`);
    const requests = (key: string) => redis.zcard(`${p}rl:{${key}}:req`);
    const lane = async (key: string, which: 'in' | 'out') =>
      Object.values(await redis.hgetall(`${p}rl:{${key}}:${which}`)).reduce((a, b) => a + Number(b), 0);
    return { limiter, book, steps, used, inFlight, requests, lane };
  }

  const scopes = (keyLimit: number): ScopeLimits[] => [
    scopeLimits('key', 'k1', 'k1', { month: keyLimit }),
    scopeLimits('org', 'o1', 'org', {}),
  ];
  const limits = (l: Partial<RateLimits>): RateLimits => ({
    rpm: null,
    inputTpm: null,
    outputTpm: null,
    concurrency: null,
    ...l,
  });

  beforeAll(async () => {
    redis = await connectRedis(REDIS_URL as string, { name: 'tollgate-test-steps' });
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  it('admits in one script: slot taken, tokens charged, budget reserved, with the request headers', async () => {
    const s = await stores();
    const l = limits({ rpm: 5, concurrency: 2, outputTpm: 1_000 });
    const ticket = s.steps.ticket('k1');
    const r = await s.steps.admit(ticket, l, now, 10, 300, scopes(10_000), 4_000);
    expect(r).toMatchObject({ ok: true, remainingMicro: 6_000 });
    if ('kind' in r || !r.ok) throw new Error('expected admission');
    expect(r.headers?.['anthropic-ratelimit-requests-remaining']).toBe('4');
    expect(await s.inFlight('k1')).toBe(1);
    expect(await s.lane('k1', 'out')).toBe(300);
    expect(await s.used('key', 'k1')).toBe(4_000);
    // The finish and the settlement in one script: slot freed, tokens corrected, spend settled.
    s.steps.finish(r.reservation, 1_500, ticket, now, 10, 120);
    s.steps.finish(r.reservation, 1_500, ticket, now, 10, 120); // a second finish changes nothing
    await s.book.close();
    expect(await s.inFlight('k1')).toBe(0);
    expect(await s.lane('k1', 'out')).toBe(120);
    expect(await s.used('key', 'k1')).toBe(1_500);
    expect(await s.used('org', 'o1')).toBe(1_500);
    expect(s.book.openCount()).toBe(0);
  });

  it('gives back the slot and the reservation of an admission whose reply came too late', async () => {
    const { proxy, redis: slow, close } = await redisThroughRelay(REDIS_URL as string, 'tollgate-test-steps');
    try {
      const s = await stores(slow);
      const l = limits({ concurrency: 1 });
      // A first admission loads the counters (a round trip of its own) and gives everything back.
      const warmTicket = s.steps.ticket('k1');
      const warm = await s.steps.admit(warmTicket, l, now, 10, 300, scopes(10_000), 4_000);
      if ('kind' in warm || !warm.ok) throw new Error('expected admission');
      s.steps.finish(warm.reservation, 0, warmTicket, now, 0, 0);
      while ((await s.inFlight('k1')) !== 0 || (await s.used('key', 'k1')) !== 0)
        await new Promise((resolve) => setTimeout(resolve, 10));
      // The finish and the settlement sent alone for a refused request were loaded into Redis when the
      // stores started (loadScripts): their NOSCRIPT answer would be held back too.
      const ticket = s.steps.ticket('k1');
      proxy.hold(); // Redis runs what it is sent; its answers do not come back
      const late = s.steps.admit(ticket, l, now, 10, 300, scopes(10_000), 4_000);
      // The premise: Redis took the slot and the reservation although its reply is held back.
      while ((await s.inFlight('k1')) !== 1 || (await s.used('key', 'k1')) !== 4_000)
        await new Promise((resolve) => setTimeout(resolve, 10));
      const r = await late;
      expect(r).toMatchObject({ ok: false, kind: 'unavailable' });
      // The refusal's finish, as admission.ts sends it for every refused request.
      s.limiter.finish(ticket, now, 0, 0);
      const until = Date.now() + 2_000;
      while (((await s.inFlight('k1')) !== 0 || (await s.used('key', 'k1')) !== 0) && Date.now() < until)
        await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await s.inFlight('k1')).toBe(0);
      expect(await s.used('key', 'k1')).toBe(0);
      expect(s.book.openCount()).toBe(0);
    } finally {
      await close();
    }
  });

  it('takes nothing when the budget refuses, but counts the request this minute (as the slot alone did)', async () => {
    const s = await stores();
    const l = limits({ rpm: 5, concurrency: 2, outputTpm: 1_000 });
    const r = await s.steps.admit(s.steps.ticket('k1'), l, now, 10, 300, scopes(1_000), 4_000);
    expect(r).toMatchObject({ ok: false, refusal: { scope: 'key', limitMicro: 1_000 } });
    expect(await s.inFlight('k1')).toBe(0);
    expect(await s.lane('k1', 'out')).toBe(0);
    expect(await s.used('key', 'k1')).toBe(0);
    expect(await s.requests('k1')).toBe(1);
  });

  it('takes nothing when the token lanes refuse, and names the lane as the step alone does', async () => {
    const s = await stores();
    const l = limits({ rpm: 5, concurrency: 2, outputTpm: 500 });
    const first = await s.steps.admit(s.steps.ticket('k1'), l, now, 10, 400, scopes(100_000), 1_000);
    expect(first).toMatchObject({ ok: true });
    const second = await s.steps.admit(s.steps.ticket('k1'), l, now, 10, 400, scopes(100_000), 1_000);
    expect(second).toMatchObject({ ok: false, kind: 'output-tokens' });
    expect((second as RateRefusal).headers['anthropic-ratelimit-output-tokens-remaining']).toBe('100');
    // Only the first holds a slot, tokens and budget; both count as requests.
    expect(await s.inFlight('k1')).toBe(1);
    expect(await s.lane('k1', 'out')).toBe(400);
    expect(await s.used('key', 'k1')).toBe(1_000);
    expect(await s.requests('k1')).toBe(2);
    // The same lanes asked on their own refuse the same way (the step's answer, unchanged).
    const alone = await s.limiter.admitTokens(s.limiter.newTicket('k1'), l, now, 10, 400);
    expect(alone).toEqual(second);
  });

  it('refuses on requests per minute and on concurrency before anything else, taking nothing', async () => {
    const s = await stores();
    const rpm = limits({ rpm: 1 });
    expect(await s.steps.admit(s.steps.ticket('a'), rpm, now, 1, 1, scopes(100_000), 10)).toMatchObject({
      ok: true,
    });
    const again = await s.steps.admit(s.steps.ticket('a'), rpm, now + 1_000, 1, 1, scopes(100_000), 10);
    expect(again).toMatchObject({ ok: false, kind: 'requests', retryAfterS: 59 });
    const one = limits({ concurrency: 1 });
    const held = await s.steps.admit(s.steps.ticket('b'), one, now, 1, 1, scopes(100_000), 10);
    expect(held).toMatchObject({ ok: true });
    const busy = await s.steps.admit(s.steps.ticket('b'), one, now, 1, 1, scopes(100_000), 10);
    expect(busy).toMatchObject({ ok: false, kind: 'concurrency' });
    // 10 reserved by the admitted request of each key, nothing by the refused ones.
    expect(await s.used('key', 'k1')).toBe(20);
  });

  it('says the rate limits cannot be checked when Redis does not answer (a key without them: budgets)', async () => {
    const conn = await connectRedis(REDIS_URL as string, { name: 'tollgate-test-steps-cut' });
    const p = `${prefix}cut:`;
    const limiter = createRedisRateLimiter({
      connect: async () => conn,
      prefix: p,
      closeConnection: false,
      slotTtlMs: 60_000,
    });
    const book = createRedisBudgetBook(conn, async () => 0, {
      prefix: `${p}budget:`,
      ttlMs: 60_000,
      renewMs: 3_600_000,
      settleRetries: 0,
    });
    await limiter.start();
    await book.start([]);
    const steps = createSharedSteps(limiter, book);
    expect(
      await steps.admit(steps.ticket('k'), limits({ rpm: 10 }), now, 1, 1, scopes(100_000), 10),
    ).toMatchObject({ ok: true });
    conn.disconnect();
    expect(
      await steps.admit(steps.ticket('k'), limits({ rpm: 10 }), now, 1, 1, scopes(100_000), 10),
    ).toMatchObject({ ok: false, kind: 'unavailable' });
    expect(await steps.admit(steps.ticket('k'), limits({}), now, 1, 1, scopes(100_000), 10)).toMatchObject({
      ok: false,
      refusal: null,
      message: expect.stringContaining('budgets cannot be checked'),
    });
    await limiter.close();
    await book.close();
  });
});
