// The shared stores' cost per request, in CPU time (robust on a busy machine, unlike req/s): the Redis
// steps of one governed request — request slot, token lanes, budget reservation, and the finish —
// driven in process against a real Redis, 64 at a time. Prints this process's CPU and Redis's CPU
// (INFO cpu) per request. Usage: node dist/bench/bench/micro-shared.js [redis-url] [requests] [mode]
// [concurrency] (default 64). Modes: `one-trip` (the default: the gateway's path for a small body, two scripts per request),
// `together` (a large body's: the request slot alone, then tokens with budgets; three scripts), and
// `separate` (each step a script of its own, five, as before the shared steps), and `leased` (the small
// body's path for a busy key: admitted in process on leases, gateway/leases.ts).

import { scopeLimits } from '../src/budgets/budget-book.js';
import { createRedisBudgetBook } from '../src/budgets/redis-budget-book.js';
import { createSharedSteps } from '../src/gateway/shared-steps.js';
import { createRedisRateLimiter } from '../src/ratelimit/redis-limiter.js';
import { connectRedis } from '../src/redis/connect.js';

const url = process.argv[2] ?? 'redis://127.0.0.1:6379/11';
const total = Number(process.argv[3] ?? 20_000);
const prefix = `tollgate-micro-${process.pid}:`;

async function redisCpu(redis: Awaited<ReturnType<typeof connectRedis>>): Promise<number> {
  const info = await redis.info('cpu');
  const read = (name: string) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? 0);
  return (read('used_cpu_user') + read('used_cpu_sys')) * 1e6;
}

const redis = await connectRedis(url);
const book = createRedisBudgetBook(redis, async () => 0, {
  prefix: `${prefix}b:`,
  ttlMs: 60_000,
  renewMs: 10_000,
});
const limiter = createRedisRateLimiter({
  connect: async () => redis,
  prefix,
  closeConnection: false,
  slotTtlMs: 60_000,
});
await book.start([]);
await limiter.start();
const BIG = 1_000_000_000_000;
const scopes = [
  scopeLimits('key', 'k1', 'k1', { month: BIG }),
  scopeLimits('user', 'u1', 'bench', { month: BIG }),
  scopeLimits('team', 't1', 'bench', { month: BIG }),
  scopeLimits('org', 'o1', 'org', { month: BIG }),
];
const limits = { rpm: 10_000_000, inputTpm: 1_000_000_000, outputTpm: 1_000_000_000, concurrency: 1000 };

const mode = process.argv[4] ?? 'one-trip';
if (!['one-trip', 'together', 'separate', 'leased'].includes(mode)) throw new Error(`unknown mode ${mode}`);
const leased = mode === 'leased';
const steps = createSharedSteps(limiter, book, leased ? {} : false);

async function one(): Promise<void> {
  const now = Date.now();
  if (mode === 'one-trip' || leased) {
    const ticket = steps.ticket('k1');
    const all = await steps.admit(ticket, limits, now, 10, 100, scopes, 5_000);
    if ('kind' in all || !all.ok) throw new Error('refused');
    steps.finish(all.reservation, 1_000, ticket, now, 10, 50);
    return;
  }
  const asked = await limiter.admitRequest('k1', limits, now);
  if (!asked.ok) throw new Error(`refused: ${asked.kind}`);
  if (mode === 'together') {
    const both = await steps.tokensAndBudget(asked.ticket, limits, now, 10, 100, scopes, 5_000);
    if ('kind' in both || !both.ok) throw new Error('refused');
    steps.finish(both.reservation, 1_000, asked.ticket, now, 10, 50);
    return;
  }
  const tokens = await limiter.admitTokens(asked.ticket, limits, now, 10, 100);
  if (tokens !== null) throw new Error(`refused tokens: ${tokens.kind}`);
  const reserved = await book.reserve(scopes, 5_000, now);
  if (!reserved.ok) throw new Error('budget refused');
  book.settle(reserved.reservation, 1_000);
  limiter.finish(asked.ticket, now, 10, 50);
}

async function run(n: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Number(process.argv[5] ?? 64) }, async () => {
      while (next++ < n) await one();
    }),
  );
  await limiter.settled();
  // A lease keeps its hold open until it has been idle a second: only the requests' own are waited for.
  while (book.openCount() > (leased ? 1 : 0)) await new Promise((r) => setTimeout(r, 5));
}

await run(2_000); // warm-up
await new Promise((r) => setTimeout(r, 200));
const r0 = await redisCpu(redis);
const c0 = process.cpuUsage();
const t0 = performance.now();
await run(total);
const c1 = process.cpuUsage(c0);
const wall = performance.now() - t0;
await new Promise((r) => setTimeout(r, 200));
const r1 = await redisCpu(redis);
const own = (c1.user + c1.system) / total;
console.log(
  `${mode}: ${total} requests: this process ${own.toFixed(1)} µs CPU/request, Redis ${((r1 - r0) / total).toFixed(1)} µs CPU/request, ${(wall / 1000).toFixed(1)} s wall`,
);
steps.close();
await limiter.close();
await book.close();
const stale = await redis.keys(`${prefix}*`);
if (stale.length > 0) await redis.del(...stale);
redis.disconnect();
