// The batch settlement (SETTLE_BATCH) against a real Redis: a turn's settlements in one script leave
// Redis exactly as each request's finish and budget settlement sent alone, one after the other (FINISH
// and SETTLE_SCRIPT) — groups settled member by member, settlements repeated, expired and unknown
// reservations, token corrections in the charged slice, in the current one or in none, and a script
// sent again ('r').
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropPrefix, keysUnder, REDIS_URL, testPrefix } from '../../test/helpers/redis-keys.js';
import { SETTLE_SCRIPT } from '../budgets/budget-scripts.js';
import { FINISH } from '../ratelimit/redis-scripts.js';
import { connectRedis, type Redis } from '../redis/connect.js';
import { script } from '../redis/script.js';
import { PER_SETTLEMENT, SETTLE_BATCH } from './shared-batch-script.js';

const batchScript = script(SETTLE_BATCH);
const finishScript = script(FINISH);
const settleScript = script(SETTLE_SCRIPT);

const now = Date.UTC(2026, 10, 22, 12, 0, 2);
const slice = Math.floor(now / 5_000);
const DAY = 'd1795305600000';

/** One request's settlement: its reservation and member, and its finish (or none). */
interface Settlement {
  readonly reservation: string;
  readonly member: string;
  readonly actual: number;
  /** '' = the whole reservation. */
  readonly part: number | '';
  readonly finish: {
    readonly ticket: string;
    readonly input: number | '';
    readonly output: number | '';
    readonly charged: number | '';
  } | null;
}

/** Two scopes' counters, the reservations the settlements name, slots and token lanes. */
async function seed(redis: Redis, p: string): Promise<void> {
  const scopes = [`${p}c:key:k`, `${p}c:user:u`];
  const lines = scopes.flatMap((key) => [DAY, 'm1', 't'].map((f) => `${key}\t${f}`)).join('\n');
  for (const key of scopes) await redis.hset(key, DAY, 5_000, 'm1', 9_000, 't', 20_000);
  await redis.hset(`${p}r:g1`, 'a', 600, 'st', 'o', 'k', lines, 'n', 3);
  await redis.hset(`${p}r:g2`, 'a', 300, 'st', 'o', 'k', lines, 'n', 2, 's2', 1);
  await redis.hset(`${p}r:own`, 'a', 250, 'st', 'o', 'k', lines);
  await redis.hset(`${p}r:gx`, 'a', 400, 'st', 'x', 'k', lines, 'n', 2);
  await redis.zadd(`${p}deadlines`, now + 60_000, 'g1', now + 60_000, 'g2', now + 60_000, 'own');
  for (const t of [1, 2, 3, 4, 5]) await redis.zadd(`${p}flight`, now + 60_000, `t${t}`);
  for (const lane of ['in', 'out']) await redis.hset(`${p}${lane}`, slice, 900, slice - 3, 400);
}

/** Every key under the prefix with its contents, the prefix written as P. */
async function dump(redis: Redis, p: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const key of (await keysUnder(redis, p)).sort()) {
    const name = key.slice(p.length);
    const type = await redis.type(key);
    if (type === 'hash') {
      const h = await redis.hgetall(key);
      out[name] = Object.fromEntries(
        Object.entries(h)
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([f, v]) => [f, v.split(p).join('P')]),
      );
    } else out[name] = await redis.zrange(key, 0, -1, 'WITHSCORES');
  }
  return out;
}

function keysAndArgs(p: string, s: Settlement) {
  const reservationId = s.reservation;
  const settle = {
    keys: [`${p}deadlines`, `${p}r:${reservationId}`],
    args: [reservationId, s.actual, s.part, s.member],
  };
  const finish = s.finish && {
    keys: [`${p}flight`, `${p}in`, `${p}out`],
    args: [now, s.finish.ticket, s.finish.input, s.finish.output, s.finish.charged],
  };
  return { settle, finish };
}

async function batched(redis: Redis, p: string, list: readonly Settlement[], again: boolean) {
  const keys: string[] = [`${p}deadlines`];
  const args: (string | number)[] = [list.length, again ? 'r' : ''];
  for (const s of list) {
    const { settle, finish } = keysAndArgs(p, s);
    keys.push(settle.keys[1] as string, ...(finish?.keys ?? ['', '', '']));
    args.push(...settle.args, ...(finish?.args ?? ['', '', '', '', '']));
  }
  expect(args.length).toBe(2 + PER_SETTLEMENT * list.length);
  await batchScript.run(redis, keys, args);
}

async function oneByOne(redis: Redis, p: string, list: readonly Settlement[], again: boolean) {
  for (const s of list) {
    const { settle, finish } = keysAndArgs(p, s);
    if (finish) await finishScript.run(redis, finish.keys, again ? [...finish.args, 'r'] : finish.args);
    await settleScript.run(redis, settle.keys, settle.args);
  }
}

const settlement: fc.Arbitrary<Settlement> = fc.record({
  reservation: fc.constantFrom('g1', 'g2', 'own', 'gx', 'gone'),
  member: fc.constantFrom('', '1', '2', '3'),
  actual: fc.integer({ min: 0, max: 700 }),
  part: fc.oneof(fc.constant('' as const), fc.integer({ min: 0, max: 300 })),
  finish: fc.option(
    fc.record({
      ticket: fc.constantFrom('t1', 't2', 't3', 't4', 't5', 't9'),
      input: fc.oneof(fc.constant('' as const), fc.integer({ min: -60, max: 60 })),
      output: fc.oneof(fc.constant('' as const), fc.integer({ min: -60, max: 60 })),
      charged: fc.constantFrom('' as const, slice, slice - 3, slice - 12, slice - 13, slice - 20),
    }),
    { nil: null },
  ),
});

describe.skipIf(!REDIS_URL)('the batch settlement (Redis)', () => {
  let redis: Redis;
  const prefix = testPrefix('settle-batch');
  let seq = 0;

  beforeAll(async () => {
    redis = await connectRedis(REDIS_URL as string, { name: 'tollgate-test-settle-batch' });
  });
  afterAll(async () => {
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  it('leaves Redis as the settlements sent alone, one after the other, would (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(settlement, { minLength: 1, maxLength: 24 }),
        fc.boolean(),
        async (list, again) => {
          const a = `${prefix}${++seq}a:`;
          const b = `${prefix}${seq}b:`;
          await seed(redis, a);
          await seed(redis, b);
          await batched(redis, a, list, again);
          await oneByOne(redis, b, list, again);
          expect(await dump(redis, a)).toEqual(await dump(redis, b));
          await dropPrefix(redis, a);
          await dropPrefix(redis, b);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("settles a group's requests together: its hash gone, their slots freed, their tokens corrected", async () => {
    const a = `${prefix}${++seq}a:`;
    await seed(redis, a);
    const list: Settlement[] = ['1', '2', '3'].map((member, i) => ({
      reservation: 'g1',
      member,
      actual: 150,
      part: 200,
      finish: { ticket: `t${i + 1}`, input: -10, output: 20, charged: slice },
    }));
    await batched(redis, a, list, false);
    const d = await dump(redis, a);
    // The group's 600 became the three requests' 450: every counter 150 lower.
    expect(d['c:key:k']).toEqual({ [DAY]: '4850', m1: '8850', t: '19850' });
    expect(d['r:g1']).toBeUndefined();
    expect(d.flight).toEqual(['t4', String(now + 60_000), 't5', String(now + 60_000)]);
    expect(d.in).toEqual({ [slice]: '870', [slice - 3]: '400' });
    expect(d.out).toEqual({ [slice]: '960', [slice - 3]: '400' });
  });
});
