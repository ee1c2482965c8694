import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { connectRedis, redactUrl } from './connect.js';

const REDIS_URL = process.env.TOLLGATE_TEST_REDIS_URL;

describe('connectRedis', () => {
  it.skipIf(!REDIS_URL)('connects to a live server and runs commands', async () => {
    const redis = await connectRedis(REDIS_URL as string, { name: 'tollgate-test' });
    try {
      expect(await redis.ping()).toBe('PONG');
    } finally {
      redis.disconnect();
    }
  });

  it('fails plainly, without the password, when nothing listens', async () => {
    const port = await freePort();
    await expect(connectRedis(`redis://:hunter2-secret@127.0.0.1:${port}`)).rejects.toMatchObject({
      code: 'redis_unavailable',
      message: expect.not.stringContaining('hunter2-secret'),
    });
  });

  it('fails within its timeout when the server accepts but never answers', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
    const { port } = silent.address() as { port: number };
    const started = Date.now();
    try {
      await expect(connectRedis(`redis://127.0.0.1:${port}`)).rejects.toMatchObject({
        code: 'redis_unavailable',
      });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      silent.close();
    }
  });

  it('redacts the password in a URL', () => {
    expect(redactUrl('redis://user:pw@host:6379/0')).toBe('redis://user:***@host:6379/0');
    expect(redactUrl('not a url')).toBe('the configured URL');
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}
