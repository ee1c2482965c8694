// The shared limiter against a real Redis: the same answers as the in-process limiter (a property over
// random runs split between two instances on two connections), token correction, concurrency released
// once, a leaked slot's expiry, and failing closed when Redis goes away.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropPrefix, keysUnder, REDIS_URL, testPrefix } from '../../test/helpers/redis-keys.js';
import { redisThroughRelay } from '../../test/helpers/tcp-proxy.js';
import { connectRedis, type Redis } from '../redis/connect.js';
import { createRateLimiter, EXACT_RPM_MAX } from './limiter.js';
import type { AdmitResult, RateLimits, RateRefusal, Ticket } from './rate-limiter.js';
import { createRedisRateLimiter, type RedisRateLimiter } from './redis-limiter.js';

const none: RateLimits = { rpm: null, inputTpm: null, outputTpm: null, concurrency: null };
const t0 = Date.UTC(2026, 10, 22, 12);
const HOUR = 3_600_000;
const prefix = testPrefix('rl-unit');

describe.skipIf(!REDIS_URL)('shared rate limiter (Redis)', () => {
  let admin: Redis;
  const limiters: RedisRateLimiter[] = [];
  let keySeq = 0;
  const newKey = () => `key_${++keySeq}`;

  /** A started limiter on a connection of its own. */
  async function limiter(
    options: { time?: 'server' | 'caller'; slotTtlMs?: number; finishRetryMs?: number[] } = {},
  ) {
    let client: Redis | null = null;
    const l = createRedisRateLimiter({
      connect: async () => {
        client = await connectRedis(REDIS_URL as string, { name: 'tollgate-test-rl' });
        return client;
      },
      prefix,
      slotTtlMs: options.slotTtlMs ?? HOUR,
      time: options.time ?? 'caller',
      ...(options.finishRetryMs ? { finishRetryMs: options.finishRetryMs } : {}),
    });
    await l.start();
    limiters.push(l);
    return { l, client: () => client as unknown as Redis };
  }

  /** A started limiter on a connection through a relay whose answers the test can hold back. */
  async function limiterThroughRelay(finishRetryMs?: number[]) {
    const { proxy, redis: slow, close } = await redisThroughRelay(REDIS_URL as string, 'tollgate-test-rl');
    const l = createRedisRateLimiter({
      connect: async () => slow,
      closeConnection: false,
      prefix,
      slotTtlMs: HOUR,
      time: 'caller',
      ...(finishRetryMs ? { finishRetryMs } : {}),
    });
    await l.start();
    return { proxy, l, close };
  }

  beforeAll(async () => {
    admin = await connectRedis(REDIS_URL as string, { name: 'tollgate-test-rl-admin' });
  });
  afterAll(async () => {
    for (const l of limiters) await l.close();
    await dropPrefix(admin, prefix);
    admin.disconnect();
  });

  it('allows at most N requests in any rolling 60 s, with the same headers and retry-after', async () => {
    const { l } = await limiter();
    const key = newKey();
    const limits = { ...none, rpm: 3 };
    for (const [i, dt] of [0, 10_000, 20_000].entries()) {
      const r = await l.admitRequest(key, limits, t0 + dt);
      expect(r).toMatchObject({ ok: true });
      expect(r.headers['anthropic-ratelimit-requests-remaining']).toBe(String(2 - i));
      expect(r.headers['anthropic-ratelimit-requests-limit']).toBe('3');
      if (r.ok) l.finish(r.ticket, t0 + dt, 0, 0);
    }
    const refused = await l.admitRequest(key, limits, t0 + 59_999);
    expect(refused).toMatchObject({ ok: false, kind: 'requests', retryAfterS: 1 });
    expect(refused.headers['anthropic-ratelimit-requests-remaining']).toBe('0');
    expect(refused.headers['anthropic-ratelimit-requests-reset']).toBe('2026-11-22T12:01:00Z');
    expect(await l.admitRequest(key, limits, t0 + 30_000)).toMatchObject({ ok: false, retryAfterS: 30 });
    expect((await l.admitRequest(key, limits, t0 + 60_000)).ok).toBe(true); // the first left the window
    expect((await l.admitRequest(key, limits, t0 + 60_001)).ok).toBe(false); // the second has not
    // Another key is not affected (positive control beside the refusals).
    expect((await l.admitRequest(newKey(), limits, t0 + 60_001)).ok).toBe(true);
  });

  it('a lowered RPM limit counts the admissions already in the window', async () => {
    const { l } = await limiter();
    const key = newKey();
    for (const dt of [0, 10_000, 20_000, 30_000]) {
      expect((await l.admitRequest(key, { ...none, rpm: 5 }, t0 + dt)).ok).toBe(true);
    }
    // Four in the window, limit now 2: the next fits once three have left (t0+20 s's at t0+80 s).
    expect(await l.admitRequest(key, { ...none, rpm: 2 }, t0 + 40_000)).toMatchObject({
      ok: false,
      retryAfterS: 40,
    });
    expect((await l.admitRequest(key, { ...none, rpm: 2 }, t0 + 79_999)).ok).toBe(false);
    expect((await l.admitRequest(key, { ...none, rpm: 2 }, t0 + 80_000)).ok).toBe(true);
  });

  it('above the exact maximum, counts requests in 5 s slices: never more than N in 60 s', async () => {
    const { l } = await limiter();
    const key = newKey();
    const rpm = EXACT_RPM_MAX + 1;
    const limits = { ...none, rpm };
    for (let i = 0; i < rpm; i++) {
      const r = await l.admitRequest(key, limits, t0 + 2_000 + i);
      if (!r.ok) throw new Error(`refused at ${i}`);
    }
    expect(await l.admitRequest(key, limits, t0 + 30_000)).toMatchObject({
      ok: false,
      kind: 'requests',
      retryAfterS: 35, // the slice holding them (t0 … t0+5 s) leaves the window at t0+65 s
    });
    expect((await l.admitRequest(key, limits, t0 + 64_999)).ok).toBe(false);
    expect((await l.admitRequest(key, limits, t0 + 65_000)).ok).toBe(true);
  });

  it('charges output at max_tokens and corrects it at finish to the actual figure', async () => {
    const { l } = await limiter();
    const key = newKey();
    const limits = { ...none, outputTpm: 1000 };
    const a = await admitBoth(l, key, limits, t0, 0, 800);
    if (!a.ok) throw new Error('expected admission');
    const b = await admitBoth(l, key, limits, t0 + 1000, 0, 800);
    expect(b).toMatchObject({ ok: false, kind: 'output-tokens' });
    expect(b.headers['anthropic-ratelimit-output-tokens-limit']).toBe('1000');
    expect(b.headers['anthropic-ratelimit-output-tokens-remaining']).toBe('200');
    l.finish(a.ticket, t0 + 1000, 0, 100);
    await l.settled();
    const c = await admitBoth(l, key, limits, t0 + 1000, 0, 800);
    expect(c.ok).toBe(true);
    // 100 actual + 800 charged: 100 left.
    const d = await admitBoth(l, key, limits, t0 + 1000, 0, 101);
    expect(d.headers['anthropic-ratelimit-output-tokens-remaining']).toBe('100');
  });

  it('adds an excess over the estimate at finish, and frees input as it leaves the window', async () => {
    const { l } = await limiter();
    const key = newKey();
    const limits = { ...none, inputTpm: 1000 };
    const a = await admitBoth(l, key, limits, t0, 100, 0);
    if (!a.ok) throw new Error('expected admission');
    l.finish(a.ticket, t0, 900, 0); // the estimate was 100; 900 were used
    await l.settled();
    const refused = await admitBoth(l, key, limits, t0 + 30_000, 200, 0);
    expect(refused).toMatchObject({ ok: false, kind: 'input-tokens', retryAfterS: 35 });
    expect((await admitBoth(l, key, limits, t0 + 60_000, 200, 0)).ok).toBe(false);
    expect((await admitBoth(l, key, limits, t0 + 65_000, 200, 0)).ok).toBe(true);
  });

  it('corrects in the slice that was charged: a refund never outlives its charge', async () => {
    const { l } = await limiter();
    const key = newKey();
    const limits = { ...none, outputTpm: 1000 };
    const a = await admitBoth(l, key, limits, t0, 0, 900);
    if (!a.ok) throw new Error('expected admission');
    l.finish(a.ticket, t0 + 30_000, 0, 100); // a long answer: 100 of the 900 reserved
    await l.settled();
    // t0's slice has left the window: the net 100 went with it, and no -800 stays behind to let
    // 1,800 tokens through in one minute.
    expect((await admitBoth(l, key, limits, t0 + 66_000, 0, 900)).ok).toBe(true);
    expect(await admitBoth(l, key, limits, t0 + 66_000, 0, 900)).toMatchObject({
      ok: false,
      kind: 'output-tokens',
    });
  });

  it('frees the slot a request took when Redis answered too late (the request was refused)', async () => {
    const { proxy, l, close } = await limiterThroughRelay();
    const key = newKey();
    const limits = { ...none, concurrency: 1 };
    const inFlight = () => admin.zcard(`${prefix}rl:{${key}}:flight`);
    try {
      proxy.hold(); // Redis runs what it is sent; its answers do not come back
      const late = l.admitRequest(key, limits, t0);
      // The premise: Redis took the slot although its reply is held back.
      while ((await inFlight()) !== 1) await sleep(10);
      expect(await late).toMatchObject({ ok: false, kind: 'unavailable' });
      // Refused (503): the slot is freed at once, not held for the slot's ttl (an hour here).
      const until = Date.now() + 2_000;
      while ((await inFlight()) !== 0 && Date.now() < until) await sleep(10);
      expect(await inFlight()).toBe(0);
    } finally {
      proxy.release();
    }
    // The key's one slot is free again (the control: a slot held is refused, as the other tests show).
    expect(await l.admitRequest(key, limits, t0)).toMatchObject({ ok: true });
    await l.close();
    await close();
  });

  it('a finish sent again after a reply that never came gives its unused tokens back once', async () => {
    const { proxy, l, close } = await limiterThroughRelay([300]);
    const key = newKey();
    const limits = { ...none, outputTpm: 10_000 };
    const output = async () => {
      const lane = await admin.hgetall(`${prefix}rl:{${key}}:out`);
      return Object.values(lane).reduce((sum, n) => sum + Number(n), 0);
    };
    try {
      const a = await admitBoth(l, key, limits, t0, 0, 1_000);
      if (!a.ok) throw new Error('expected admission');
      expect(await output()).toBe(1_000);
      proxy.hold(); // Redis runs the finish; its answer does not come back in time
      l.finish(a.ticket, t0, 0, 100);
      while ((await output()) !== 100) await sleep(10);
      // The reply is late (1 s): the finish is sent again (after 300 ms) and runs again in Redis.
      await sleep(1_600);
    } finally {
      proxy.release();
    }
    await l.settled();
    // Given back once: 100 used (twice, 1,000 - 900 - 900 would let 800 tokens more through this minute).
    expect(await output()).toBe(100);
    await l.close();
    await close();
  });

  it('releases a concurrency slot exactly once', async () => {
    const { l } = await limiter();
    const key = newKey();
    const limits = { ...none, concurrency: 2 };
    const a = await l.admitRequest(key, limits, t0);
    const b = await l.admitRequest(key, limits, t0);
    if (!a.ok || !b.ok) throw new Error('expected admissions');
    expect(await l.admitRequest(key, limits, t0)).toMatchObject({
      ok: false,
      kind: 'concurrency',
      retryAfterS: 1,
    });
    l.finish(a.ticket, t0, 0, 0);
    l.finish(a.ticket, t0, 0, 0); // a second finish does nothing
    await l.settled();
    expect((await l.admitRequest(key, limits, t0)).ok).toBe(true);
    expect((await l.admitRequest(key, limits, t0)).ok).toBe(false);
    expect(await admin.zcard(`${prefix}rl:{${key}}:flight`)).toBe(2);
  });

  it('a slot its instance never finishes (killed) expires after slotTtlMs; a live instance renews its own', async () => {
    const dead = await limiter({ time: 'server', slotTtlMs: 400 });
    const live = await limiter({ time: 'server', slotTtlMs: 400 });
    const other = await limiter({ time: 'server', slotTtlMs: 400 });
    const limits = { ...none, concurrency: 1 };
    const leakedKey = newKey();
    const heldKey = newKey();
    const idleKey = newKey();
    // The "killed" instance takes slots and never finishes them (its connection is simply dropped).
    expect((await dead.l.admitRequest(leakedKey, limits, 0)).ok).toBe(true);
    expect((await dead.l.admitRequest(idleKey, limits, 0)).ok).toBe(true);
    dead.client().disconnect();
    const held = await live.l.admitRequest(heldKey, limits, 0);
    if (!held.ok) throw new Error('expected admission');
    expect(await other.l.admitRequest(leakedKey, limits, 0)).toMatchObject({
      ok: false,
      kind: 'concurrency',
    });
    expect(await admin.pttl(`${prefix}rl:{${leakedKey}}:flight`)).toBeLessThanOrEqual(400);
    for (let i = 0; i < 4; i++) {
      await sleep(150);
      await live.l.renew();
    }
    // 600 ms later: the leaked slot is gone, the renewed one still held.
    const after = await other.l.admitRequest(leakedKey, limits, 0);
    expect(after.ok).toBe(true);
    expect(await other.l.admitRequest(heldKey, limits, 0)).toMatchObject({ ok: false, kind: 'concurrency' });
    live.l.finish(held.ticket, 0, 0, 0);
    await live.l.settled();
    expect((await other.l.admitRequest(heldKey, limits, 0)).ok).toBe(true);
    // Nobody touched the other leaked key: Redis dropped it at its TTL (idle keys vanish).
    expect(await admin.exists(`${prefix}rl:{${idleKey}}:flight`)).toBe(0);
  });

  it('two instances on two connections give the answers of one in-process limiter', async () => {
    const a = await limiter();
    const b = await limiter();
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('admit' as const),
        via: fc.integer({ min: 0, max: 1 }),
        dt: fc.integer({ min: 0, max: 15_000 }),
        input: fc.integer({ min: 0, max: 600 }),
        output: fc.integer({ min: 1, max: 600 }),
      }),
      fc.record({
        kind: fc.constant('finish' as const),
        via: fc.integer({ min: 0, max: 1 }),
        index: fc.nat(),
        dt: fc.integer({ min: 0, max: 15_000 }),
      }),
    );
    const limitsArb = fc.record({
      rpm: fc.option(fc.integer({ min: 1, max: 5 })),
      inputTpm: fc.option(fc.integer({ min: 100, max: 1500 })),
      outputTpm: fc.option(fc.integer({ min: 100, max: 1500 })),
      concurrency: fc.option(fc.integer({ min: 1, max: 3 })),
    });
    let refusals = 0;
    let admissions = 0;
    await fc.assert(
      fc.asyncProperty(limitsArb, fc.array(op, { minLength: 1, maxLength: 30 }), async (limits, ops) => {
        const key = newKey();
        const memory: Limiter = createRateLimiter();
        const open: { memory: Ticket; shared: Ticket; charged: [number, number] }[] = [];
        let now = t0;
        for (const o of ops) {
          now += o.dt;
          const shared = o.via === 0 ? a.l : b.l;
          if (o.kind === 'finish') {
            const t = open.splice(o.index % Math.max(1, open.length), 1)[0];
            if (!t) continue;
            memory.finish(t.memory, now, t.charged[0], t.charged[1]);
            shared.finish(t.shared, now, t.charged[0], t.charged[1]);
            await shared.settled();
            continue;
          }
          const m = await admitBoth(memory, key, limits, now, o.input, o.output);
          const s = await admitBoth(shared, key, limits, now, o.input, o.output);
          await shared.settled();
          expect(summary(s)).toEqual(summary(m));
          if (m.ok && s.ok) {
            admissions++;
            open.push({ memory: m.ticket, shared: s.ticket, charged: [o.input, o.output] });
          } else refusals++;
        }
      }),
      { numRuns: 60 },
    );
    // The runs exercised both answers.
    expect(admissions).toBeGreaterThan(50);
    expect(refusals).toBeGreaterThan(20);
  });

  it('keeps every key under its prefix, each with an expiry', async () => {
    const keys = await keysUnder(admin, prefix);
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) expect(await admin.pttl(k)).toBeGreaterThan(0);
  });

  it('reloads its scripts when the server has forgotten them (NOSCRIPT)', async () => {
    const { l } = await limiter();
    await admin.script('FLUSH');
    expect((await l.admitRequest(newKey(), { ...none, rpm: 1 }, t0)).ok).toBe(true);
  });

  it('fails closed when Redis cannot be asked; a finish then neither throws nor hangs', async () => {
    const { l, client } = await limiter({ finishRetryMs: [10, 10] });
    const key = newKey();
    const ok = await l.admitRequest(key, { ...none, concurrency: 5 }, t0);
    if (!ok.ok) throw new Error('expected admission');
    // A key without limits needs no round trip: admitted even while Redis is away.
    client().disconnect();
    expect(await l.admitRequest(key, { ...none, concurrency: 5 }, t0)).toMatchObject({
      ok: false,
      kind: 'unavailable',
    });
    expect(await l.admitRequest(key, { ...none, rpm: 100 }, t0)).toMatchObject({
      ok: false,
      kind: 'unavailable',
    });
    expect(await l.admitTokens(ok.ticket, { ...none, inputTpm: 10 }, t0, 1, 1)).toMatchObject({
      kind: 'unavailable',
    });
    expect((await l.admitRequest(key, none, t0)).ok).toBe(true);
    expect(() => l.finish(ok.ticket, t0, 0, 0)).not.toThrow();
    await l.settled(); // gives up after its retries
    expect(l.openSlots()).toBe(0);
  });

  it('refuses to start when Redis does not answer', async () => {
    const l = createRedisRateLimiter({
      connect: () => connectRedis('redis://127.0.0.1:1'),
      prefix,
      slotTtlMs: 1_000,
    });
    await expect(l.start()).rejects.toMatchObject({ code: 'redis_unavailable' });
    expect(await l.admitRequest('k', { ...none, rpm: 1 }, t0)).toMatchObject({ kind: 'unavailable' });
  });
});

interface Limiter {
  admitRequest(keyId: string, limits: RateLimits, now: number): AdmitResult | Promise<AdmitResult>;
  admitTokens(
    t: Ticket,
    limits: RateLimits,
    now: number,
    i: number,
    o: number,
  ): RateRefusal | null | Promise<RateRefusal | null>;
  finish(t: Ticket, now: number, i: number, o: number): void;
}

/** Both steps, as the gateway takes them: a token refusal finishes the ticket. */
async function admitBoth(
  l: Limiter,
  key: string,
  limits: RateLimits,
  now: number,
  input: number,
  output: number,
): Promise<AdmitResult> {
  const r = await l.admitRequest(key, limits, now);
  if (!r.ok) return r;
  const refused = await l.admitTokens(r.ticket, limits, now, input, output);
  if (refused === null) return r;
  l.finish(r.ticket, now, 0, 0);
  return refused;
}

function summary(r: AdmitResult) {
  return r.ok
    ? { ok: true, headers: r.headers }
    : { ok: false, kind: r.kind, retryAfterS: r.retryAfterS, headers: r.headers };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
