// A Redis rate limiter and budget book on one connection, as the gateway builds them, with their shared
// steps (gateway/shared-steps.ts), for tests against a real Redis. Windows use the caller's time; the
// book's keys are under `${prefix}budget:`.
import { createRedisBudgetBook } from '../../src/budgets/redis-budget-book.js';
import type { LeaseOptions } from '../../src/gateway/leases.js';
import { createSharedSteps } from '../../src/gateway/shared-steps.js';
import { createRedisRateLimiter } from '../../src/ratelimit/redis-limiter.js';
import type { Redis } from '../../src/redis/connect.js';

export async function sharedStores(
  connection: Redis,
  prefix: string,
  bookTtlMs = 60_000,
  leases: LeaseOptions | false = false,
) {
  const limiter = createRedisRateLimiter({
    connect: async () => connection,
    prefix,
    closeConnection: false,
    slotTtlMs: 60_000,
    time: 'caller',
  });
  const book = createRedisBudgetBook(connection, async () => 0, {
    prefix: `${prefix}budget:`,
    ttlMs: bookTtlMs,
    renewMs: 3_600_000,
  });
  await limiter.start();
  await book.start([]);
  const steps = createSharedSteps(limiter, book, leases);
  return {
    limiter,
    book,
    steps,
    async close(): Promise<void> {
      steps.close();
      await limiter.close();
      await book.close();
    },
  };
}
