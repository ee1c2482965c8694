// A real minute (kept out of `npm test`): a 10 RPM key driven for 75 s at one request every 2.5 s,
// round-robin over three gateway instances sharing one Redis prefix. At most 10 requests are admitted in
// any 60 s (the 11th only once the first has left the window), and the window does slide: requests are
// admitted again after the first minute. Refusals carry retry-after and the requests headers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/redis/connect.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { call, type Instance, startInstance } from '../helpers/gateway-instances.js';
import { dropPrefix, REDIS_URL, testPrefix } from '../helpers/redis-keys.js';

describe.skipIf(!REDIS_URL)('a shared 10 RPM limit over a real minute', () => {
  const prefix = testPrefix('rl-minute');
  let h: Harness;
  let others: Instance[] = [];

  beforeAll(async () => {
    h = await startHarness({
      env: { TOLLGATE_REDIS_URL: REDIS_URL as string, TOLLGATE_REDIS_KEY_PREFIX: prefix },
    });
    await h.orgCredential();
    others = [await startInstance(h), await startInstance(h)];
  });
  afterAll(async () => {
    for (const o of others) await o.close();
    await h?.close();
    const redis = await connectRedis(REDIS_URL as string);
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  it('admits at most 10 in any 60 s across three instances, and again once the window slides', async () => {
    const urls = [h.url, ...others.map((o) => o.url)];
    const key = await h.key({ user: 'minute', policy: { rpm: 10 } });
    const start = Date.now();
    const admitted: number[] = [];
    let refused = 0;
    for (let i = 0; i * 2_500 < 75_000; i++) {
      const wait = start + i * 2_500 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const sent = Date.now();
      const outcome = await call(urls[i % urls.length] as string, key);
      if (outcome.status === 200) {
        admitted.push(sent - start);
        continue;
      }
      refused++;
      expect(outcome.status).toBe(429);
      const retry = Number(outcome.headers.get('retry-after'));
      expect(retry).toBeGreaterThanOrEqual(1);
      expect(retry).toBeLessThanOrEqual(60);
      expect(outcome.headers.get('anthropic-ratelimit-requests-remaining')).toBe('0');
      // The first admission leaves the window 60 s after it was made: retry-after says so (±1 s).
      const firstLeaves = (admitted[0] as number) + 60_000;
      if (sent - start < firstLeaves - 1_000) {
        expect(Math.abs(sent - start + retry * 1000 - firstLeaves)).toBeLessThanOrEqual(2_000);
      }
    }
    // No 60 s window (less 0.5 s for the time between a request's sending and its admission) holds 11.
    for (let i = 10; i < admitted.length; i++) {
      expect((admitted[i] as number) - (admitted[i - 10] as number)).toBeGreaterThan(59_500);
    }
    expect(admitted.slice(0, 10).every((t) => t < 30_000)).toBe(true);
    expect(admitted.length).toBeGreaterThan(10); // the window slid
    expect(admitted.length).toBeLessThanOrEqual(20);
    expect(refused).toBeGreaterThan(0);
  });
});
