// The shared budget book against a real Redis (TOLLGATE_TEST_REDIS_URL; skipped without): reservation
// all-or-nothing across scopes, refusals worded as the in-process book's, idempotent settlement,
// expiry (released once, renewed reservations kept), the rebuild after Redis lost its data, and
// concurrent reservers on several connections never exceeding a limit.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisThroughRelay } from '../../test/helpers/tcp-proxy.js';
import { connectRedis } from '../redis/connect.js';
import { createBudgetBook, type ScopeLimits, type SpendLoader, scopeLimits } from './budget-book.js';
import { createRedisBudgetBook, REDIS_START_MARGIN_MS, type RedisBookOptions } from './redis-budget-book.js';

const REDIS_URL = process.env.TOLLGATE_TEST_REDIS_URL;
/** A database of its own: the rebuild test empties it (FLUSHDB), as a restarted Redis would be. */
const DB = 13;
const now = Date.UTC(2026, 10, 22, 12);
const noSpend: SpendLoader = async () => 0;

function scopes(limits: { key?: number; user?: number; org?: number }): ScopeLimits[] {
  return [
    scopeLimits('key', 'key_1', 'key_1', limits.key === undefined ? {} : { month: limits.key }),
    scopeLimits('user', 'usr_1', 'alice', limits.user === undefined ? {} : { day: limits.user }),
    scopeLimits('org', 'org_1', 'org', limits.org === undefined ? {} : { total: limits.org }),
  ];
}

describe.skipIf(!REDIS_URL)('the shared budget book (Redis)', () => {
  const parsed = new URL(REDIS_URL ?? 'redis://127.0.0.1');
  parsed.pathname = `/${DB}`;
  const url = parsed.toString();
  const connections: Redis[] = [];
  let redis: Redis;
  const connect = async () => {
    const c = await connectRedis(url, { name: 'tollgate-budget-test' });
    connections.push(c);
    return c;
  };
  /** A book on a fresh prefix (or the given one), started (no other instance live). */
  const book = async (load: SpendLoader = noSpend, options: Partial<RedisBookOptions> = {}, conn?: Redis) => {
    const b = createRedisBudgetBook(conn ?? redis, load, {
      prefix: `t:${randomBytes(4).toString('hex')}:`,
      ttlMs: 60_000,
      renewMs: 3_600_000,
      ...options,
    });
    await b.start([]);
    return b;
  };
  /** A counter's used micro-USD: settled plus reserved (-1 when Redis does not hold it). */
  const counter = async (prefix: string, scope: string, id: string, period: string, start: number) => {
    const field = period === 'total' ? 't' : `${period[0]}${start}`;
    return Number((await redis.hget(`${prefix}c:${scope}:${id}`, field)) ?? -1);
  };
  const dayStart = Date.UTC(2026, 10, 22);
  const monthStart = Date.UTC(2026, 10, 1);

  beforeAll(async () => {
    redis = await connect();
    await redis.flushdb();
  });
  afterAll(async () => {
    await redis.flushdb();
    for (const c of connections) c.disconnect();
  });

  it('reserves on every scope or none, and refuses naming the scope as the in-process book does', async () => {
    const prefix = `t:${randomBytes(4).toString('hex')}:`;
    const shared = await book(noSpend, { prefix });
    const local = createBudgetBook(noSpend);
    const s = scopes({ key: 1000, user: 700 });
    await local.prepare(s, now);
    const results = [];
    for (let i = 0; i < 10; i++) {
      const r = await shared.reserve(s, 100, now);
      const l = local.reserve(s, 100, now);
      expect(r.ok).toBe(l.ok);
      if (r.ok && l.ok) expect(r.remainingMicro).toBe(l.remainingMicro);
      if (!r.ok && !l.ok) expect(r.refusal).toEqual(l.refusal);
      results.push(r);
    }
    expect(results.filter((r) => r.ok)).toHaveLength(7);
    expect(results[9]).toMatchObject({
      ok: false,
      refusal: { scope: 'user', label: 'user alice', usedMicro: 700 },
    });
    // The refused reservations added nothing anywhere: every counter holds exactly the 7 admitted.
    expect(await counter(prefix, 'key', 'key_1', 'month', monthStart)).toBe(700);
    expect(await counter(prefix, 'user', 'usr_1', 'day', dayStart)).toBe(700);
    expect(await counter(prefix, 'org', 'org_1', 'total', 0)).toBe(700);
    // A reservation refused on a later scope leaves the earlier ones untouched.
    const tight = scopes({ key: 10_000, org: 750 });
    expect(await shared.reserve(tight, 100, now)).toMatchObject({ ok: false, refusal: { scope: 'org' } });
    expect(await counter(prefix, 'key', 'key_1', 'month', monthStart)).toBe(700);
  });

  it('loads a counter Redis lacks from the ledger, once, and keys it by period start', async () => {
    const prefix = `t:${randomBytes(4).toString('hex')}:`;
    const loads: string[] = [];
    const shared = await book(
      async (scope, _id, period, start) => {
        loads.push(`${scope}:${period}:${start}`);
        return scope === 'user' && period === 'day' && start === dayStart ? 650 : 0;
      },
      { prefix },
    );
    const s = scopes({ user: 700 });
    expect(await shared.reserve(s, 100, now)).toMatchObject({
      ok: false,
      refusal: { scope: 'user', usedMicro: 650 },
    });
    expect(loads).toHaveLength(9);
    expect(await shared.reserve(s, 50, now)).toMatchObject({ ok: true, remainingMicro: 0 });
    expect(loads).toHaveLength(9);
    // The next day is a new counter for every scope, loaded from its own start (months and totals stay).
    const tomorrow = now + 86_400_000;
    expect(await shared.reserve(s, 100, tomorrow)).toMatchObject({ ok: true });
    expect(loads.slice(9).sort()).toEqual(
      ['key', 'org', 'user'].map((scope) => `${scope}:day:${dayStart + 86_400_000}`),
    );
    // The past day's counter is dropped with the new day's first use; the month's stays.
    expect(await counter(prefix, 'user', 'usr_1', 'day', dayStart)).toBe(-1);
    expect(await counter(prefix, 'user', 'usr_1', 'day', dayStart + 86_400_000)).toBe(100);
    expect(await counter(prefix, 'user', 'usr_1', 'month', monthStart)).toBe(150);
  });

  it('settles once: a second settlement, or a release after it, changes nothing', async () => {
    const prefix = `t:${randomBytes(4).toString('hex')}:`;
    const shared = await book(noSpend, { prefix });
    const s = scopes({ key: 1000 });
    const r = await shared.reserve(s, 600, now);
    if (!r.ok) throw new Error('expected admission');
    shared.settle(r.reservation, 250);
    shared.settle(r.reservation, 250);
    shared.release(r.reservation);
    await shared.close();
    expect(await counter(prefix, 'key', 'key_1', 'month', monthStart)).toBe(250);
    // Even a second object for the same id (another instance retrying) counts nothing twice.
    const again = { ...r.reservation, settled: false };
    shared.settle(again, 250);
    await shared.close();
    expect(await counter(prefix, 'key', 'key_1', 'month', monthStart)).toBe(250);
  });

  it('releases an unrenewed reservation after its ttl, once; a late settlement adds its spend only', async () => {
    const prefix = `t:${randomBytes(4).toString('hex')}:`;
    const dead = await book(noSpend, { prefix, ttlMs: 300 });
    const live = await book(noSpend, { prefix, ttlMs: 300 });
    const s = scopes({ key: 1000 });
    const orphan = await dead.reserve(s, 400, now); // its instance is killed: never renewed, never settled
    const kept = await live.reserve(s, 300, now); // its instance renews it
    const late = await dead.reserve(s, 200, now); // settled after it expired
    if (!orphan.ok || !kept.ok || !late.ok) throw new Error('expected admission');
    expect(await counter(prefix, 'key', 'key_1', 'month', monthStart)).toBe(900);
    expect(await dead.reserve(s, 200, now)).toMatchObject({ ok: false });
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 120));
      await live.renew();
    }
    // Swept by the renewal (or any reservation): the orphan's 400 and the late one's 200 are released.
    expect(await counter(prefix, 'key', 'key_1', 'month', monthStart)).toBe(300);
    dead.settle(late.reservation, 150);
    await dead.close();
    expect(await counter(prefix, 'key', 'key_1', 'month', monthStart)).toBe(450);
    // The renewed one settles normally.
    live.settle(kept.reservation, 300);
    await live.close();
    expect(await counter(prefix, 'key', 'key_1', 'month', monthStart)).toBe(450);
    expect(await redis.zcard(`${prefix}deadlines`)).toBe(0);
  });

  it('renews every open reservation, in batches, so none is released while its instance lives', async () => {
    const prefix = `t:${randomBytes(4).toString('hex')}:`;
    const live = await book(noSpend, { prefix, ttlMs: 1_500 });
    const s = scopes({});
    const open = await Promise.all(Array.from({ length: 1_200 }, () => live.reserve(s, 1, now)));
    expect(open.every((r) => r.ok)).toBe(true);
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await live.renew()).toEqual({ vanished: 0, swept: 0 });
    }
    expect(await counter(prefix, 'org', 'org_1', 'total', 0)).toBe(1200);
    // Control: unrenewed, they expire and are swept.
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    await live.reserve(s, 1, now);
    expect(await counter(prefix, 'org', 'org_1', 'total', 0)).toBeLessThan(1_200);
  });

  it('after Redis lost its data, admits nothing until requests admitted before are over, then rebuilds from the ledger', async () => {
    const prefix = `t:${randomBytes(4).toString('hex')}:`;
    let ledger = 500; // settled spend of the user's day, as the ledger has it
    const load: SpendLoader = async (scope, _id, period) =>
      scope === 'user' && period === 'day' ? ledger : 0;
    const a = await book(load, { prefix, renewMs: 100 });
    const s = scopes({ user: 1000 });
    const inFlight = await a.reserve(s, 300, now);
    if (!inFlight.ok) throw new Error('expected admission');
    expect(await counter(prefix, 'user', 'usr_1', 'day', dayStart)).toBe(800);
    await redis.flushdb(); // restarted empty
    const refused = await a.reserve(s, 100, now);
    expect(refused).toMatchObject({ ok: false, refusal: null });
    if (refused.ok || refused.refusal !== null) throw new Error('expected a quarantine refusal');
    expect(refused.retryAfterS).toBeGreaterThan(0);
    expect(refused.message).toMatch(/lost its data.*rebuilt/);
    // While the request admitted before still runs, its instance's renewals keep the quarantine going.
    const quarantine = 2 * 100 + 2_000;
    await new Promise((resolve) => setTimeout(resolve, quarantine + 300));
    await a.renew();
    expect(await a.reserve(s, 100, now)).toMatchObject({ ok: false, refusal: null });
    // It ends: its record is in the ledger (written before its answer ended), then it settles (ignored:
    // its reservation went with Redis's data).
    ledger += 280;
    a.settle(inFlight.reservation, 280);
    await new Promise((resolve) => setTimeout(resolve, quarantine + 300));
    const after = await a.reserve(s, 200, now);
    expect(after).toMatchObject({ ok: true, remainingMicro: 1000 - 780 - 200 });
    expect(await counter(prefix, 'user', 'usr_1', 'day', dayStart)).toBe(980);
    expect(await a.reserve(s, 100, now)).toMatchObject({ ok: false, refusal: { usedMicro: 980 } });
    await a.close();
  }, 15_000);

  it('starts without waiting on an empty Redis unless another live instance started before Redis did', async () => {
    const fresh = () =>
      createRedisBudgetBook(redis, noSpend, {
        prefix: `t:${randomBytes(4).toString('hex')}:`,
        ttlMs: 60_000,
        renewMs: 1_000,
      });
    const [seconds] = await redis.time();
    const uptime = Number(/^uptime_in_seconds:(\d+)/m.exec(await redis.info('server'))?.[1]);
    const redisStartedAt = (Number(seconds) - uptime) * 1000;
    // Alone, or beside instances started with or after Redis (a fresh deployment): admits at once.
    const alone = fresh();
    await alone.start([]);
    expect(await alone.reserve(scopes({}), 1, now)).toMatchObject({ ok: true });
    await alone.close();
    const together = fresh();
    await together.start([redisStartedAt + REDIS_START_MARGIN_MS + 1_000]);
    expect(await together.reserve(scopes({}), 1, now)).toMatchObject({ ok: true });
    await together.close();
    // Beside one that ran before this Redis started (Redis restarted empty under it): waits.
    const beside = fresh();
    await beside.start([redisStartedAt - 60_000]);
    expect(await beside.reserve(scopes({}), 1, now)).toMatchObject({
      ok: false,
      refusal: null,
      message: expect.stringMatching(/lost its data .* retry in \d+ s/),
    });
    await beside.close();
  });

  it('fails closed when a counter must be loaded and the database does not answer', async () => {
    let down = true;
    const shared = await book(async () => {
      if (down) throw new Error('connect ECONNREFUSED');
      return 0;
    });
    const refused = await shared.reserve(scopes({ key: 1000 }), 100, now);
    expect(refused).toMatchObject({ ok: false, refusal: null });
    if (!refused.ok && refused.refusal === null)
      expect(refused.message).toMatch(/could not be read from the database$/);
    down = false;
    expect(await shared.reserve(scopes({ key: 1000 }), 100, now)).toMatchObject({
      ok: true,
      remainingMicro: 900,
    });
  });

  it('fails closed when Redis is unreachable, and gives a settlement up after bounded retries', async () => {
    const gone = await connect();
    const errors: string[] = [];
    const shared = createRedisBudgetBook(gone, noSpend, {
      prefix: `t:${randomBytes(4).toString('hex')}:`,
      ttlMs: 60_000,
      renewMs: 3_600_000,
      settleRetries: 2,
      onError: (what) => errors.push(what),
    });
    await shared.start([]);
    const r = await shared.reserve(scopes({ key: 1000 }), 100, now);
    if (!r.ok) throw new Error('expected admission');
    gone.disconnect();
    const refused = await shared.reserve(scopes({ key: 1000 }), 100, now);
    expect(refused).toMatchObject({ ok: false, refusal: null, retryAfterS: null });
    if (!refused.ok && refused.refusal === null) expect(refused.message).toMatch(/Redis\) is unreachable/);
    shared.settle(r.reservation, 50);
    await shared.close();
    // Causes are told to the log, not the client.
    expect(errors).toEqual(['checking budgets in Redis', 'settling a budget reservation']);
  });

  it('releases a reservation Redis took but whose reply came too late (the request was refused)', async () => {
    const { proxy, redis: slow, close } = await redisThroughRelay(url, 'tollgate-budget-test');
    const prefix = `t:${randomBytes(4).toString('hex')}:`;
    const shared = await book(noSpend, { prefix }, slow);
    const s = scopes({ key: 1000 });
    const first = await shared.reserve(s, 100, now);
    if (!first.ok) throw new Error('expected admission');
    shared.settle(first.reservation, 100);
    const key = () => counter(prefix, 'key', 'key_1', 'month', monthStart);
    while ((await key()) !== 100) await new Promise((resolve) => setTimeout(resolve, 10));
    try {
      proxy.hold(); // Redis runs what it is sent; its answers do not come back
      const late = shared.reserve(s, 200, now);
      // The premise: Redis took the reservation although its reply is held back.
      while ((await key()) !== 300) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await late).toMatchObject({ ok: false, refusal: null });
      // Refused (503): the reservation is given back at once, not held until it expires.
      const until = Date.now() + 2_000;
      while ((await key()) !== 100 && Date.now() < until)
        await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await key()).toBe(100);
      expect(await redis.zcard(`${prefix}deadlines`)).toBe(0);
    } finally {
      proxy.release();
      await shared.close();
      await close();
    }
  });

  it('never admits beyond a limit with reservers on several connections at once (property)', async () => {
    const conns = await Promise.all([connect(), connect(), connect()]);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 100, max: 5_000 }),
        fc.array(fc.integer({ min: 1, max: 900 }), { minLength: 5, maxLength: 60 }),
        async (limit, amounts) => {
          const prefix = `t:${randomBytes(4).toString('hex')}:`;
          const books = await Promise.all(conns.map((c) => book(noSpend, { prefix }, c)));
          const s = scopes({ key: limit * 2, user: limit, org: limit + 7 });
          const results = await Promise.all(
            amounts.map((a, i) => (books[i % books.length] as (typeof books)[number]).reserve(s, a, now)),
          );
          const admitted = amounts.filter((_, i) => results[i]?.ok).reduce((x, y) => x + y, 0);
          expect(admitted).toBeLessThanOrEqual(limit);
          // Nothing refused that fitted: every refused amount exceeds what was left at the end.
          const refusedMin = Math.min(...amounts.filter((_, i) => !results[i]?.ok));
          if (Number.isFinite(refusedMin)) expect(admitted + refusedMin).toBeGreaterThan(limit);
          const c = await counter(prefix, 'user', 'usr_1', 'day', dayStart);
          expect(c).toBe(admitted);
        },
      ),
      { numRuns: 25 },
    );
    // Equal amounts: exactly as many as fit, whichever connection each came through.
    const prefix = `t:${randomBytes(4).toString('hex')}:`;
    const books = await Promise.all(conns.map((c) => book(noSpend, { prefix }, c)));
    const s = scopes({ user: 1_000 });
    const results = await Promise.all(
      Array.from({ length: 90 }, (_, i) => (books[i % 3] as (typeof books)[number]).reserve(s, 37, now)),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(Math.floor(1_000 / 37));
  }, 30_000);
});
