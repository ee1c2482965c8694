// Leases against a real Redis: a busy key's requests admitted in process on chunks of its limits leave
// Redis exactly where one-by-one admission leaves it once the leases end (every request counted once in
// the slice it was admitted in, tokens corrected, spend settled, slots freed), and never below the truth
// meanwhile; near a limit, for exact windows and for a quiet key there is no lease; a lease's instance
// killed with -9 gives back only what it did not spend; a hold lost with Redis's data ends the lease.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropPrefix, REDIS_URL, testPrefix } from '../../test/helpers/redis-keys.js';
import { sharedStores } from '../../test/helpers/shared-stores.js';
import { type Reservation, type ScopeLimits, scopeLimits } from '../budgets/budget-book.js';
import type { RateLimits, Ticket } from '../ratelimit/rate-limiter.js';
import { connectRedis, type Redis } from '../redis/connect.js';
import type { LeaseOptions } from './leases.js';
import type { SharedAdmission } from './shared-steps.js';

const start = Date.UTC(2026, 10, 22, 12, 0, 1);
const monthStart = Date.UTC(2026, 10, 1);
const prefix = testPrefix('leases');
const turn = () => new Promise((resolve) => setImmediate(resolve));
/** The leases' clock (their final scripts' time): the tests' `now`. */
let clockNow = start;
const clock = () => clockNow;

const BIG: RateLimits = { rpm: 100_000, inputTpm: 50_000_000, outputTpm: 50_000_000, concurrency: 10_000 };

describe.skipIf(!REDIS_URL)('leases (Redis)', () => {
  let redis: Redis;
  let seq = 0;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    redis = await connectRedis(REDIS_URL as string, { name: 'tollgate-test-leases' });
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  /** A fresh key space; `instance()` adds an instance (its own limiter, book and leases) on it. */
  function space() {
    const p = `${prefix}${++seq}:`;
    const sum = async (key: string) =>
      Object.values(await redis.hgetall(key)).reduce((a, b) => a + Number(b), 0);
    return {
      async instance(leases: LeaseOptions | false = { busyAfter: 1 }, ttlMs = 60_000) {
        const s = await sharedStores(redis, p, ttlMs, leases && { timer: false, clock, ...leases });
        closers.push(s.close);
        return s;
      },
      used: async (scope: string, id: string) =>
        Number((await redis.hget(`${p}budget:c:${scope}:${id}`, `m${monthStart}`)) ?? 0),
      slices: async (key: string) => {
        const h = await redis.hgetall(`${p}rl:{${key}}:req5s`);
        return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Number(v)]));
      },
      lane: (key: string, which: 'in' | 'out') => sum(`${p}rl:{${key}}:${which}`),
      inFlight: (key: string) => redis.zcard(`${p}rl:{${key}}:flight`),
      holds: async () => (await redis.keys(`${p}budget:r:*`)).length,
    };
  }

  const scopes = (keyLimit: number | null, id = 'k1'): ScopeLimits[] => [
    scopeLimits('key', id, id, keyLimit === null ? {} : { month: keyLimit }),
    scopeLimits('org', 'o1', 'org', {}),
  ];

  type Stores = Awaited<ReturnType<ReturnType<typeof space>['instance']>>;
  interface Admitted {
    readonly reservation: Reservation;
    readonly ticket: Ticket;
    readonly at: number;
  }
  async function admit(
    s: Stores,
    key: string,
    l: RateLimits,
    sc: ScopeLimits[],
    now: number,
    worst = 1_000,
    input = 10,
    output = 100,
  ): Promise<{ r: SharedAdmission; admitted: Admitted | null }> {
    const ticket = s.steps.ticket(key);
    const r = await s.steps.admit(ticket, l, now, input, output, sc, worst);
    const admitted = 'kind' in r || !r.ok ? null : { reservation: r.reservation, ticket, at: now };
    return { r, admitted };
  }

  it('admits a busy key in process and, once the lease ends, leaves Redis as one by one would', async () => {
    const sp = space();
    const s = await sp.instance();
    const sc = scopes(1_000_000_000);
    // The first request loads the budget counters (one by one); the rest lease.
    const warm = (await admit(s, 'k1', BIG, sc, start)).admitted as Admitted;
    expect(s.steps.leases?.liveCount()).toBe(0);
    s.steps.finish(warm.reservation, 300, warm.ticket, start, 8, 60);
    const first = await Promise.all(Array.from({ length: 40 }, () => admit(s, 'k1', BIG, sc, start)));
    expect(first.every((a) => a.admitted !== null)).toBe(true);
    expect(s.steps.leases?.liveCount()).toBe(1);
    // The chunk is counted whole in Redis while the lease holds it: more than the 40 admitted, never less.
    const held = await sp.slices('k1');
    expect(Object.values(held).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(40);
    expect(await sp.inFlight('k1')).toBeGreaterThanOrEqual(16);
    expect(await sp.used('key', 'k1')).toBeGreaterThanOrEqual(40 * 1_000);
    // Admitted in process: the headers say what is left of the minute.
    const last = first[39]?.r;
    if (!last || 'kind' in last || !last.ok) throw new Error('expected an admission');
    expect(Number(last.headers?.['anthropic-ratelimit-requests-remaining'])).toBeLessThan(100_000 - 40 + 1);
    expect(last.remainingMicro).toBeLessThanOrEqual(1_000_000_000 - 40 * 1_000);
    for (const a of first) {
      const { reservation, ticket } = a.admitted as Admitted;
      s.steps.finish(reservation, 300, ticket, start + 10, 8, 60);
    }
    await turn();
    // The spend left the hold in the turn's report: the counter is the spend plus what the hold keeps.
    s.steps.leases?.sweep(start + 2_000);
    await s.book.close();
    expect(s.steps.leases?.liveCount()).toBe(0);
    expect(await sp.slices('k1')).toEqual({ [String(Math.floor(start / 5_000))]: 41 });
    expect(await sp.lane('k1', 'in')).toBe(41 * 8);
    expect(await sp.lane('k1', 'out')).toBe(41 * 60);
    expect(await sp.used('key', 'k1')).toBe(41 * 300);
    expect(await sp.used('org', 'o1')).toBe(41 * 300);
    expect(await sp.inFlight('k1')).toBe(0);
    expect(await sp.holds()).toBe(0);
  });

  it("gives a segment's unused parts back to its slice when the next chunk is taken", async () => {
    const sp = space();
    const s = await sp.instance();
    const sc = scopes(1_000_000_000);
    const slice = (t: number) => String(Math.floor(t / 5_000));
    expect((await admit(s, 'k1', BIG, sc, start)).admitted).not.toBeNull();
    const leased = await admit(s, 'k1', BIG, sc, start, 1_000, 10, 100);
    expect(s.steps.leases?.liveCount()).toBe(1);
    expect((await sp.slices('k1'))[slice(start)]).toBeGreaterThan(2);
    // The next slice, with no sweep between: its chunk gives the first segment's unused parts back.
    const next = await admit(s, 'k1', BIG, sc, start + 5_000, 1_000, 10, 100);
    expect(next.admitted).not.toBeNull();
    const counted = await sp.slices('k1');
    expect(counted[slice(start)]).toBe(2);
    expect(counted[slice(start + 5_000)]).toBeGreaterThan(1);
    // The first leased request's tokens, charged in a segment that is over, are corrected in Redis.
    const first = leased.admitted as Admitted;
    s.steps.finish(first.reservation, 10, first.ticket, start + 5_000, 10, 40);
    clockNow = start + 5_000;
    s.steps.close();
    const second = next.admitted as Admitted;
    s.steps.finish(second.reservation, 10, second.ticket, start + 5_000, 10, 30);
    await s.book.close();
    expect(await sp.slices('k1')).toEqual({ [slice(start)]: 2, [slice(start + 5_000)]: 1 });
    expect(await sp.lane('k1', 'out')).toBe(100 + 40 + 30);
  });

  it('keeps its lease for an equal key entry, and ends it when a limit changes', async () => {
    const sp = space();
    const s = await sp.instance();
    expect((await admit(s, 'k1', BIG, scopes(1_000_000_000), start)).admitted).not.toBeNull();
    expect((await admit(s, 'k1', BIG, scopes(1_000_000_000), start)).admitted).not.toBeNull();
    expect(s.steps.leases?.liveCount()).toBe(1);
    // Equal entries (a second lookup of the same key): the same lease.
    const again = await admit(s, 'k1', { ...BIG }, scopes(1_000_000_000), start);
    expect(again.admitted).not.toBeNull();
    expect(s.steps.leases?.liveCount()).toBe(1);
    // The budget changed: that request goes one by one and the lease ends (its requests still run).
    const changed = await admit(s, 'k1', BIG, scopes(2_000_000_000), start);
    expect(changed.admitted).not.toBeNull();
    const ended = await admit(s, 'k1', { ...BIG, rpm: 200_000 }, scopes(2_000_000_000), start);
    expect(ended.admitted).not.toBeNull();
    expect(s.steps.leases?.liveCount()).toBe(2);
  });

  it('takes no lease near a limit, for an exact requests-per-minute window, or for a quiet key', async () => {
    const sp = space();
    const s = await sp.instance();
    const quiet = await sp.instance({ busyAfter: 1_000 });
    const cases: [string, Stores, RateLimits, ScopeLimits[]][] = [
      // 16 chunks of 1 % of $0.10 do not fit once $0.085 is spent… here the limit is 10 requests' worth.
      ['near', s, BIG, scopes(10_000, 'near')],
      ['exact', s, { ...BIG, rpm: 1_000 }, scopes(null, 'exact')],
      ['tight', s, { ...BIG, concurrency: 50 }, scopes(null, 'tight')],
      ['quiet', quiet, BIG, scopes(null, 'quiet')],
      // The positive control: the same key far from its limits takes one.
      ['far', s, BIG, scopes(1_000_000_000, 'far')],
    ];
    const leased: Record<string, boolean> = {};
    for (const [key, stores, l, sc] of cases) {
      // The first request loads the budget counters (one by one); the second would lease.
      expect((await admit(stores, key, l, sc, start)).admitted).not.toBeNull();
      const before = stores.steps.leases?.liveCount() ?? 0;
      const got = await admit(stores, key, l, sc, start);
      expect(got.admitted).not.toBeNull();
      leased[key] = (stores.steps.leases?.liveCount() ?? 0) > before;
    }
    expect(leased).toEqual({ near: false, exact: false, tight: false, quiet: false, far: true });
    // One by one near the limit: the budget admits exactly its 10 requests' worth, then refuses.
    const more = [];
    for (let i = 0; i < 12; i++) more.push(await admit(s, 'near', BIG, scopes(10_000, 'near'), start));
    expect(more.filter((a) => a.admitted !== null)).toHaveLength(8);
  });

  it('never counts below the truth, and ends exact, for two instances in any order of events', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant('admit' as const),
              who: fc.nat(1),
              key: fc.constantFrom('a', 'b'),
              n: fc.integer({ min: 1, max: 40 }),
              worst: fc.integer({ min: 100, max: 5_000 }),
              output: fc.integer({ min: 1, max: 500 }),
            }),
            fc.record({
              op: fc.constant('finish' as const),
              pick: fc.nat(),
              n: fc.integer({ min: 1, max: 40 }),
              over: fc.boolean(),
            }),
            fc.record({
              op: fc.constant('time' as const),
              ms: fc.integer({ min: 0, max: 4_000 }),
              sweep: fc.boolean(),
            }),
          ),
          { maxLength: 30 },
        ),
        async (events) => {
          const sp = space();
          const instances = [await sp.instance(), await sp.instance()];
          const sc = { a: scopes(1_000_000_000, 'a'), b: scopes(1_000_000_000, 'b') };
          let now = start;
          clockNow = now;
          const running: (Admitted & { who: number; key: 'a' | 'b'; worst: number; output: number })[] = [];
          const truth = { spend: 0, requests: new Map<string, number>(), out: 0 };
          const slice = (t: number) => String(Math.floor(t / 5_000));
          for (const e of events) {
            if (e.op === 'admit') {
              const s = instances[e.who] as Stores;
              const got = await Promise.all(
                Array.from({ length: e.n }, () =>
                  admit(s, e.key, BIG, sc[e.key], now, e.worst, 10, e.output),
                ),
              );
              for (const g of got) {
                if (!g.admitted) throw new Error('refused far from every limit');
                running.push({ ...g.admitted, who: e.who, key: e.key, worst: e.worst, output: e.output });
                const k = `${e.key}:${slice(now)}`;
                truth.requests.set(k, (truth.requests.get(k) ?? 0) + 1);
              }
            } else if (e.op === 'finish') {
              for (let i = 0; i < e.n && running.length > 0; i++) {
                const [r] = running.splice(e.pick % running.length, 1);
                if (!r) break;
                const actual = e.over ? r.worst + 7 : Math.floor(r.worst / 3);
                const out = e.over ? r.output + 3 : Math.floor(r.output / 2);
                truth.spend += actual;
                truth.out += out;
                (instances[r.who] as Stores).steps.finish(r.reservation, actual, r.ticket, now, 10, out);
              }
            } else {
              // Within the minute's window (its slices are all still counted at the end).
              if (now + e.ms > start + 50_000) continue;
              now += e.ms;
              clockNow = now;
              // Unswept, a segment's unused parts go back with the lease's next chunk.
              if (e.sweep) for (const s of instances) s.steps.leases?.sweep(now);
            }
            await turn();
            await turn();
            // Never below the truth: the budget counter holds all spend plus what is still held.
            const counted = (await sp.used('key', 'a')) + (await sp.used('key', 'b'));
            expect(counted).toBeGreaterThanOrEqual(truth.spend);
            expect(await sp.inFlight('a')).toBeGreaterThanOrEqual(
              running.filter((r) => r.key === 'a').length,
            );
          }
          for (const r of running.splice(0)) {
            const actual = Math.floor(r.worst / 3);
            truth.spend += actual;
            truth.out += r.output;
            (instances[r.who] as Stores).steps.finish(r.reservation, actual, r.ticket, now, 10, r.output);
          }
          await turn();
          for (const s of instances) {
            s.steps.close();
            await s.book.close();
          }
          expect((await sp.used('key', 'a')) + (await sp.used('key', 'b'))).toBe(truth.spend);
          expect((await sp.used('org', 'o1')) as number).toBe(truth.spend);
          const counted = new Map<string, number>();
          for (const key of ['a', 'b']) {
            for (const [s, n] of Object.entries(await sp.slices(key)))
              if (n !== 0) counted.set(`${key}:${s}`, n);
          }
          expect(counted).toEqual(truth.requests);
          expect((await sp.lane('a', 'out')) + (await sp.lane('b', 'out'))).toBe(truth.out);
          expect((await sp.inFlight('a')) + (await sp.inFlight('b'))).toBe(0);
          expect(await sp.holds()).toBe(0);
        },
      ),
      { numRuns: 40 },
    );
  }, 120_000);

  it('gives back only what was not spent when its instance dies (the hold expires)', async () => {
    const sp = space();
    const dead = await sp.instance({ busyAfter: 1 }, 300);
    const sc = scopes(1_000_000_000);
    const got = await Promise.all(Array.from({ length: 10 }, () => admit(dead, 'k1', BIG, sc, start)));
    for (const g of got.slice(0, 6)) {
      const a = g.admitted as Admitted;
      dead.steps.finish(a.reservation, 250, a.ticket, start, 10, 100);
    }
    await turn();
    await turn();
    const held = await sp.used('key', 'k1');
    expect(held).toBeGreaterThan(6 * 250);
    // Killed: no more reports, renewals or closes. Another instance's reservation sweeps the hold.
    await new Promise((resolve) => setTimeout(resolve, 400));
    const other = await sp.instance(false);
    const one = await admit(other, 'k1', { ...BIG, rpm: null, concurrency: null }, sc, start, 1);
    expect(one.admitted).not.toBeNull();
    // What the dead instance spent stays counted; its four running requests' worst cases and the
    // unused rest are given back (their spend, unknown, is in its ledger as the worst case at most).
    expect(await sp.used('key', 'k1')).toBe(6 * 250 + 1);
  });

  it('ends a lease whose hold Redis lost: its requests then go one by one', async () => {
    const sp = space();
    const s = await sp.instance();
    const sc = scopes(1_000_000_000);
    expect((await admit(s, 'k1', BIG, sc, start)).admitted).not.toBeNull();
    const a = await admit(s, 'k1', BIG, sc, start);
    expect(a.admitted).not.toBeNull();
    expect(s.steps.leases?.liveCount()).toBe(1);
    // Redis lost the hold (a restart empty, a flush): the next chunk finds it gone.
    const holds = await redis.keys(`${prefix}${seq}:budget:r:*`);
    await redis.del(...holds);
    // In the same slice the chunk still serves; the next slice needs a chunk, which ends the lease.
    const later = await admit(s, 'k1', BIG, sc, start + 5_000);
    expect(later.admitted).not.toBeNull(); // one by one (this test's Redis kept its epoch)
    const info = a.admitted as Admitted;
    expect(s.steps.leases?.liveCount()).toBe(1); // ending: its first request still runs
    s.steps.finish(info.reservation, 100, info.ticket, start + 5_000, 10, 100);
    expect(s.steps.leases?.liveCount()).toBe(0);
  });
});
