import { describe, expect, it } from 'vitest';
import { connectRedis } from './connect.js';
import { script } from './script.js';

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
});
