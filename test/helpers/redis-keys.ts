// Tests against the Redis named by TOLLGATE_TEST_REDIS_URL: a key prefix of their own per test file (so
// parallel files never meet) and its removal afterwards.
import { randomBytes } from 'node:crypto';
import type { Redis } from '../../src/redis/connect.js';

export const REDIS_URL = process.env.TOLLGATE_TEST_REDIS_URL;

/** A fresh prefix, e.g. `tollgate-test:rl-unit:1a2b3c4d:`. */
export function testPrefix(name: string): string {
  return `tollgate-test:${name}:${randomBytes(4).toString('hex')}:`;
}

/** Every key under `prefix`. */
export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found;
}

/** Deletes every key under `prefix`. */
export async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  const keys = await keysUnder(redis, prefix);
  if (keys.length > 0) await redis.del(...keys);
}
