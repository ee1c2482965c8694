import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startTcpProxy } from '../../test/helpers/tcp-proxy.js';
import { answeredWithin, connectRedis, redactUrl } from './connect.js';

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

  it.skipIf(!REDIS_URL)(
    'does not run a command again on the next connection when its reply was lost (callerTimeouts)',
    async () => {
      const target = new URL(REDIS_URL as string);
      const admin = await connectRedis(REDIS_URL as string, { name: 'tollgate-test-admin' });
      const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
      try {
        // The gateway's connection (callerTimeouts), and ioredis's default as the control: it resends.
        for (const callerTimeouts of [true, false]) {
          const proxy = await startTcpProxy(target.hostname, Number(target.port || 6379));
          const redis = await connectRedis(`redis://127.0.0.1:${proxy.port}${target.pathname}`, {
            name: 'tollgate-test-resend',
            callerTimeouts,
          });
          const key = `tollgate-test:resend:${randomBytes(6).toString('hex')}`;
          try {
            proxy.hold(); // Redis runs the command; its reply does not come back
            const lost = answeredWithin(redis.incr(key)).catch((error: unknown) => error);
            while (Number(await admin.get(key)) !== 1) await sleep(5);
            const reconnected = new Promise((resolve) => redis.once('ready', resolve));
            await proxy.down(); // the connection drops before the reply
            proxy.release();
            await proxy.up();
            await reconnected;
            expect(await answeredWithin(redis.ping())).toBe('PONG');
            await lost;
            await sleep(100);
            expect(Number(await admin.get(key))).toBe(callerTimeouts ? 1 : 2);
          } finally {
            redis.disconnect();
            await proxy.close();
            await admin.del(key);
          }
        }
      } finally {
        admin.disconnect();
      }
    },
  );

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
