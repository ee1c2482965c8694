import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { redisThroughRelay } from '../../test/helpers/tcp-proxy.js';
import { connectRedis, REDIS_COMMAND_TIMEOUT_MS, RedisTimeoutError } from './connect.js';
import { loadScripts, script, sendHeldWrites } from './script.js';

const REDIS_URL = process.env.TOLLGATE_TEST_REDIS_URL;
const echo = script("return ARGV[1] .. ':' .. redis.call('TIME')[1] * 0 + 1");

describe.skipIf(!REDIS_URL)('script', () => {
  it('sends the scripts of one event-loop turn in one write, each answered on its own', async () => {
    const redis = await connectRedis(REDIS_URL as string, { name: 'tollgate-test' });
    try {
      await echo.run(redis, [], ['warm']); // loaded (NOSCRIPT handled) before counting
      const stream = redis.stream as unknown as {
        _write: (...a: unknown[]) => unknown;
        _writev: (...a: unknown[]) => unknown;
      };
      const calls = { write: 0, writev: 0, chunks: 0 };
      const write = stream._write.bind(stream);
      const writev = stream._writev.bind(stream);
      stream._write = (...a) => {
        calls.write++;
        return write(...a);
      };
      stream._writev = (chunks, ...rest) => {
        calls.writev++;
        calls.chunks += (chunks as unknown[]).length;
        return writev(chunks, ...rest);
      };
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => echo.run(redis, [], [`r${i}`])));
      expect(answers).toEqual(Array.from({ length: 10 }, (_, i) => `r${i}:1`));
      expect(calls).toEqual({ write: 0, writev: 1, chunks: 10 });
      // The next turn's script is not held back by the previous one's batch.
      calls.writev = 0;
      calls.chunks = 0;
      expect(await echo.run(redis, [], ['alone'])).toBe('alone:1');
      expect(calls.write + calls.writev).toBe(1);
    } finally {
      redis.disconnect();
    }
  });

  it('counts a reply that came in time as an answer, even read after the deadline (a busy event loop)', async () => {
    for (const callerTimeouts of [true, false]) {
      const redis = await connectRedis(REDIS_URL as string, { name: 'tollgate-test', callerTimeouts });
      try {
        await echo.run(redis, [], ['warm']);
        const answer = echo.run(redis, [], ['busy']).then(
          (value) => value,
          (error: unknown) => error,
        );
        // Sent now, not at the end of this turn (where the turn's writes leave): a command sent after
        // the busy loop would be answered after the deadline's check, which then rightly times it out.
        sendHeldWrites();
        // Redis answers within a millisecond; this process reads the reply only after the deadline.
        const until = Date.now() + REDIS_COMMAND_TIMEOUT_MS + 500;
        while (Date.now() < until) {}
        // The deadline's timer is due before the reply is read. ioredis's own timer (the control, as
        // before callerTimeouts) then refuses a reply Redis had sent in time.
        if (callerTimeouts) expect(await answer).toBe('busy:1');
        else expect(String(await answer)).toMatch(/Command timed out/);
      } finally {
        redis.disconnect();
      }
    }
  });

  it('gives up on a reply that does not come (Redis hangs), then works again once it answers', async () => {
    const { proxy, redis, close } = await redisThroughRelay(REDIS_URL as string, 'tollgate-test');
    try {
      await echo.run(redis, [], ['warm']);
      proxy.hold();
      const sent = Date.now();
      const error = await echo.run(redis, [], ['hung']).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedisTimeoutError);
      expect(Date.now() - sent).toBeGreaterThanOrEqual(REDIS_COMMAND_TIMEOUT_MS - 5);
      expect(Date.now() - sent).toBeLessThan(REDIS_COMMAND_TIMEOUT_MS + 1_000);
      proxy.release();
      expect(await echo.run(redis, [], ['back'])).toBe('back:1');
    } finally {
      await close();
    }
  });

  it('loads every defined script at start, so none waits for a NOSCRIPT round trip', async () => {
    const fresh = script(`return '${randomBytes(8).toString('hex')}'`);
    const sha = createHash('sha1').update(fresh.source).digest('hex');
    const redis = await connectRedis(REDIS_URL as string, { name: 'tollgate-test' });
    try {
      expect(await redis.script('EXISTS', sha)).toEqual([0]);
      await loadScripts(redis);
      expect(await redis.script('EXISTS', sha)).toEqual([1]);
    } finally {
      redis.disconnect();
    }
  });
});
