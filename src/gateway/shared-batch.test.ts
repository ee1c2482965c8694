// The batch admission against a real Redis: requests of one key asked in the same turn go in one script,
// and every one of them is admitted or refused exactly as when each is asked alone, one after the other —
// the same answers, headers and refusals, and the same windows, slots and budget counters after them,
// and again after every admitted request settled. Also: a batch whose reply comes too late gives back
// what it took, and settlements of a group's requests after it expired add their spend only.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropPrefix, REDIS_URL, testPrefix } from '../../test/helpers/redis-keys.js';
import { sharedStores } from '../../test/helpers/shared-stores.js';
import { redisThroughRelay } from '../../test/helpers/tcp-proxy.js';
import { type Reservation, type ScopeLimits, scopeLimits } from '../budgets/budget-book.js';
import { createRedisBudgetBook } from '../budgets/redis-budget-book.js';
import type { RateLimits, Ticket } from '../ratelimit/rate-limiter.js';
import { connectRedis, type Redis } from '../redis/connect.js';
import type { SharedAdmission } from './shared-steps.js';

const now = Date.UTC(2026, 10, 22, 12);
const prefix = testPrefix('batch');

interface Ask {
  readonly input: number;
  readonly output: number;
  readonly worst: number;
  /** The micro-USD it settles at when admitted (at most its worst case). */
  readonly actual: number;
}

describe.skipIf(!REDIS_URL)('the batch admission (Redis)', () => {
  let redis: Redis;
  const closers: (() => Promise<void>)[] = [];
  let seq = 0;

  async function stores(connection: Redis = redis, ttlMs = 60_000) {
    const p = `${prefix}${++seq}:`;
    const { limiter, book, steps, close } = await sharedStores(connection, p, ttlMs);
    closers.push(close);
    /** Everything the admissions change, summed where ticket ids or group ids differ by instance. */
    async function state(scopes: readonly ScopeLimits[]) {
      const sum = (h: Record<string, string>) => Object.values(h).reduce((a, b) => a + Number(b), 0);
      const base = `${p}rl:{k}:`;
      const counters = await Promise.all(scopes.map((s) => redis.hgetall(`${p}budget:c:${s.scope}:${s.id}`)));
      return {
        requests: await redis.zcard(`${base}req`),
        requestScores: (await redis.zrange(`${base}req`, 0, -1, 'WITHSCORES')).filter((_, i) => i % 2 === 1),
        sliced: sum(await redis.hgetall(`${base}req5s`)),
        inFlight: await redis.zcard(`${base}flight`),
        input: sum(await redis.hgetall(`${base}in`)),
        output: sum(await redis.hgetall(`${base}out`)),
        counters,
      };
    }
    const reservations = async () => (await redis.keys(`${p}budget:r:*`)).length;
    return { limiter, book, steps, state, reservations, p };
  }

  beforeAll(async () => {
    redis = await connectRedis(REDIS_URL as string, { name: 'tollgate-test-batch' });
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  /** The answer without what differs by instance (the reservation object, ticket ids). */
  function shape(r: SharedAdmission) {
    if ('kind' in r) return r;
    if (r.ok) return { ok: true, remainingMicro: r.remainingMicro, headers: r.headers };
    return r;
  }

  it('admits and refuses every request of a batch as one by one would, leaving the same state', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          rpm: fc.option(fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constant(5_000)), { nil: null }),
          concurrency: fc.option(fc.integer({ min: 1, max: 10 }), { nil: null }),
          inputTpm: fc.option(fc.integer({ min: 50, max: 400 }), { nil: null }),
          outputTpm: fc.option(fc.integer({ min: 50, max: 400 }), { nil: null }),
        }),
        fc.option(fc.integer({ min: 500, max: 6_000 }), { nil: undefined }),
        fc.option(fc.integer({ min: 500, max: 9_000 }), { nil: undefined }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(
          fc
            .record({
              input: fc.integer({ min: 0, max: 120 }),
              output: fc.integer({ min: 0, max: 120 }),
              worst: fc.integer({ min: 1, max: 900 }),
              spent: fc.double({ min: 0, max: 1, noNaN: true }),
            })
            .map((a): Ask => ({ ...a, actual: Math.floor(a.worst * a.spent) })),
          { minLength: 2, maxLength: 14 },
        ),
        async (limits: RateLimits, keyMonth, orgDay, warmup, asks) => {
          const scopes: ScopeLimits[] = [
            scopeLimits('key', 'k', 'k', { month: keyMonth }),
            scopeLimits('org', 'o', 'org', { day: orgDay, total: 20_000 }),
          ];
          const batched = await stores();
          const alone = await stores();
          const held: { s: typeof batched; reservation: Reservation; ticket: Ticket; ask: Ask }[] = [];
          // The same history on both first (one by one: it also loads the counters).
          for (const s of [batched, alone]) {
            for (let i = 0; i < warmup + 1; i++) {
              const ticket = s.steps.ticket('k');
              const r = await s.steps.admit(ticket, limits, now - 20_000, 7, 9, scopes, 100);
              if ('kind' in r || !r.ok) s.limiter.finish(ticket, now, 0, 0);
              else if (i === 0) s.steps.finish(r.reservation, 40, ticket, now, 5, 6);
            }
            await s.limiter.settled();
          }
          const before = await batched.reservations();
          const openBefore = batched.book.openCount();
          // Asked in one turn: one batch. Asked one after the other: a script each.
          const tickets = asks.map(() => batched.steps.ticket('k'));
          const together = await Promise.all(
            asks.map((a, i) =>
              batched.steps.admit(tickets[i] as Ticket, limits, now, a.input, a.output, scopes, a.worst),
            ),
          );
          const oneByOne: SharedAdmission[] = [];
          for (const a of asks) {
            const ticket = alone.steps.ticket('k');
            const r = await alone.steps.admit(ticket, limits, now, a.input, a.output, scopes, a.worst);
            oneByOne.push(r);
            if (!('kind' in r) && r.ok) held.push({ s: alone, reservation: r.reservation, ticket, ask: a });
          }
          together.forEach((r, i) => {
            if (!('kind' in r) && r.ok)
              held.push({
                s: batched,
                reservation: r.reservation,
                ticket: tickets[i] as Ticket,
                ask: asks[i] as Ask,
              });
          });
          expect(together.map(shape)).toEqual(oneByOne.map(shape));
          expect(await batched.state(scopes)).toEqual(await alone.state(scopes));
          // The premise: the batch went as one script, holding one group reservation.
          const admitted = together.filter((r) => !('kind' in r) && r.ok).length;
          if (admitted > 0) expect(await batched.reservations()).toBe(before + 1);
          // Every admitted request settles: on one side all in one turn (one script), on the other one
          // turn each (a script each). Then the finishes of refused ones, as admission.ts sends them.
          for (const h of held) {
            h.s.steps.finish(h.reservation, h.ask.actual, h.ticket, now, h.ask.input, 3);
            if (h.s === alone) await new Promise((resolve) => setImmediate(resolve));
          }
          for (const [s, list, ts] of [
            [batched, together, tickets],
            [alone, oneByOne, null],
          ] as const) {
            list.forEach((r, i) => {
              if (('kind' in r || !r.ok) && ts) s.limiter.finish(ts[i] as Ticket, now, 0, 0);
            });
            await s.limiter.settled();
            await s.book.close();
          }
          expect(await batched.state(scopes)).toEqual(await alone.state(scopes));
          expect(await batched.reservations()).toBe(before);
          expect(batched.book.openCount()).toBe(openBefore);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('settles a group request by request: its hash goes with the last; after expiry each adds its spend', async () => {
    const s = await stores(redis, 300);
    const scopes = [scopeLimits('key', 'k', 'k', { month: 100_000 })];
    const limits: RateLimits = { rpm: null, inputTpm: null, outputTpm: null, concurrency: null };
    const counter = async () => Number(await redis.hget(`${s.p}budget:c:key:k`, `m${Date.UTC(2026, 10, 1)}`));
    // Loads the counter (one by one), then three in one turn.
    const first = await s.steps.admit(s.steps.ticket('k'), limits, now, 1, 1, scopes, 100);
    if ('kind' in first || !first.ok) throw new Error('expected admission');
    s.book.settle(first.reservation, 0);
    const three = await Promise.all(
      [300, 200, 100].map((w) => s.steps.admit(s.steps.ticket('k'), limits, now, 1, 1, scopes, w)),
    );
    const [a, b, c] = three.map((r) => {
      if ('kind' in r || !r.ok) throw new Error('expected admission');
      return r.reservation;
    }) as [Reservation, Reservation, Reservation];
    expect(await s.reservations()).toBe(1);
    expect(await counter()).toBe(600);
    s.book.settle(a, 120);
    await s.book.close(); // waits for the settlement
    expect(await counter()).toBe(420);
    expect(await s.reservations()).toBe(1);
    // Its instance stops renewing (killed): after the ttl another instance's sweep gives back what the
    // group's unsettled requests held (300).
    const live = createRedisBudgetBook(redis, async () => 0, {
      prefix: `${s.p}budget:`,
      ttlMs: 300,
      renewMs: 3_600_000,
    });
    await live.start([]);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await live.renew()).toEqual({ vanished: 0, swept: 1 });
    await live.close();
    expect(await counter()).toBe(120);
    s.book.settle(b, 150); // late: adds its spend only
    s.book.settle(b, 150); // twice: nothing more
    s.book.settle(c, 0);
    await s.book.close();
    expect(await counter()).toBe(270);
    expect(await s.reservations()).toBe(0);
  });

  it('settles a group request once when its settlement is sent again after a reply that came too late', async () => {
    const { proxy, redis: slow, close } = await redisThroughRelay(REDIS_URL as string, 'tollgate-test-batch');
    try {
      const s = await stores(slow);
      const scopes = [scopeLimits('key', 'k', 'k', { month: 100_000 })];
      const limits: RateLimits = { rpm: null, inputTpm: null, outputTpm: null, concurrency: null };
      const counter = async () =>
        Number(await redis.hget(`${s.p}budget:c:key:k`, `m${Date.UTC(2026, 10, 1)}`));
      const loaded = await s.steps.admit(s.steps.ticket('k'), limits, now, 1, 1, scopes, 100);
      if ('kind' in loaded || !loaded.ok) throw new Error('expected admission');
      s.book.settle(loaded.reservation, 0);
      const two = await Promise.all(
        [400, 500].map((w) => s.steps.admit(s.steps.ticket('k'), limits, now, 1, 1, scopes, w)),
      );
      const [a, b] = two.map((r) => {
        if ('kind' in r || !r.ok) throw new Error('expected admission');
        return r.reservation;
      }) as [Reservation, Reservation];
      expect(await counter()).toBe(900);
      proxy.hold(); // Redis runs the settlement; its answer does not come back in time
      s.steps.finish(a, 150, s.steps.ticket('k'), now, 0, 0);
      while ((await counter()) !== 650) await new Promise((resolve) => setTimeout(resolve, 10));
      // The reply is late (1 s): the settlement is sent again (after 250 ms), and runs again in Redis.
      await new Promise((resolve) => setTimeout(resolve, 1_600));
      proxy.release();
      await s.book.close();
      expect(await counter()).toBe(650);
      s.book.settle(b, 500);
      await s.book.close();
      expect(await counter()).toBe(650);
      expect(await s.reservations()).toBe(0);
    } finally {
      await close();
    }
  });

  it("gives a finish's unused tokens back once when its settlement is sent again", async () => {
    const { proxy, redis: slow, close } = await redisThroughRelay(REDIS_URL as string, 'tollgate-test-batch');
    try {
      const s = await stores(slow);
      const scopes = [scopeLimits('key', 'k', 'k', { month: 100_000 })];
      const limits: RateLimits = { rpm: null, inputTpm: null, outputTpm: 100_000, concurrency: null };
      const admit = async (outputReserve: number) => {
        const ticket = s.steps.ticket('k');
        const r = await s.steps.admit(ticket, limits, now, 1, outputReserve, scopes, 100);
        if ('kind' in r || !r.ok) throw new Error('expected admission');
        return { ticket, reservation: r.reservation };
      };
      const output = async () => (await s.state(scopes)).output;
      const refunded = await admit(1_000); // output charged at 1,000 tokens; it uses 100
      const exceeded = await admit(10); // charged at 10; it uses 50
      expect(await output()).toBe(1_010);
      proxy.hold(); // Redis runs the settlements; their answer does not come back in time
      s.steps.finish(refunded.reservation, 50, refunded.ticket, now, 0, 100);
      s.steps.finish(exceeded.reservation, 50, exceeded.ticket, now, 0, 50);
      while ((await output()) !== 150) await new Promise((resolve) => setTimeout(resolve, 10));
      // The reply is late (1 s): the settlements are sent again (after 250 ms) and run again in Redis.
      await new Promise((resolve) => setTimeout(resolve, 1_600));
      proxy.release();
      await s.book.close();
      // The refund of 900 once (sent again, it gives nothing back); the excess of 40 at most twice: the
      // minute counts at least what was used, never less.
      expect(await output()).toBe(190);
      expect(await s.reservations()).toBe(0);
    } finally {
      await close();
    }
  });

  it('gives back what a batch took when its reply came too late', async () => {
    const { proxy, redis: slow, close } = await redisThroughRelay(REDIS_URL as string, 'tollgate-test-batch');
    try {
      const s = await stores(slow);
      const scopes = [scopeLimits('key', 'k', 'k', { month: 100_000 })];
      const limits: RateLimits = { rpm: 100, inputTpm: null, outputTpm: null, concurrency: 5 };
      const warm = s.steps.ticket('k');
      const loaded = await s.steps.admit(warm, limits, now, 1, 1, scopes, 100);
      if ('kind' in loaded || !loaded.ok) throw new Error('expected admission');
      s.steps.finish(loaded.reservation, 0, warm, now, 0, 0);
      await s.limiter.settled();
      const state = () => s.state(scopes);
      while ((await state()).inFlight !== 0) await new Promise((resolve) => setTimeout(resolve, 10));
      const tickets = [1, 2, 3].map(() => s.steps.ticket('k'));
      proxy.hold(); // Redis runs the batch; its answer does not come back
      const late = Promise.all(tickets.map((t) => s.steps.admit(t, limits, now, 1, 1, scopes, 100)));
      // The premise: Redis took the three slots and the group's 300.
      while ((await state()).inFlight !== 3) await new Promise((resolve) => setTimeout(resolve, 10));
      expect((await state()).counters[0]?.[`m${Date.UTC(2026, 10, 1)}`]).toBe('300');
      const answers = await late;
      for (const r of answers) expect(r).toMatchObject({ ok: false, kind: 'unavailable' });
      for (const t of tickets) s.limiter.finish(t, now, 0, 0); // each refusal's finish (admission.ts)
      const until = Date.now() + 3_000;
      let after = await state();
      while (
        (after.inFlight !== 0 || after.counters[0]?.[`m${Date.UTC(2026, 10, 1)}`] !== '0') &&
        Date.now() < until
      ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        after = await state();
      }
      expect(after.inFlight).toBe(0);
      expect(after.counters[0]?.[`m${Date.UTC(2026, 10, 1)}`]).toBe('0');
      expect(s.book.openCount()).toBe(0);
    } finally {
      await close();
    }
  });
});
