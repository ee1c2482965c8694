import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { changeChannel, createChangePublisher, subscribeChanges } from './push.js';

const REDIS_URL = process.env.TOLLGATE_TEST_REDIS_URL;

async function until(test: () => boolean, ms = 3_000): Promise<void> {
  const start = Date.now();
  while (!test()) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('change push', () => {
  it.skipIf(!REDIS_URL)(
    'wakes the subscribers of its installation only, after each announcement',
    async () => {
      const mine = changeChannel(`org_${randomBytes(6).toString('hex')}`);
      const other = changeChannel(`org_${randomBytes(6).toString('hex')}`);
      let woken = 0;
      let otherWoken = 0;
      const sub = subscribeChanges(REDIS_URL as string, mine, () => woken++);
      const otherSub = subscribeChanges(REDIS_URL as string, other, () => otherWoken++);
      const publisher = createChangePublisher(REDIS_URL as string, mine);
      try {
        await until(() => sub.state() === 'subscribed' && otherSub.state() === 'subscribed');
        // Subscribing wakes once (anything published before it is read by that poll).
        const afterSubscribe = woken;
        const otherAfterSubscribe = otherWoken;
        expect(afterSubscribe).toBe(1);
        publisher.publish();
        await until(() => woken > afterSubscribe);
        // Coalesced: a burst sends at most one more announcement after the one in flight.
        for (let i = 0; i < 50; i++) publisher.publish();
        await until(() => woken >= afterSubscribe + 2);
        await new Promise((r) => setTimeout(r, 100));
        expect(woken - afterSubscribe).toBeGreaterThanOrEqual(2);
        expect(woken - afterSubscribe).toBeLessThanOrEqual(3);
        expect(otherWoken).toBe(otherAfterSubscribe);
      } finally {
        await publisher.close();
        await sub.close();
        await otherSub.close();
      }
      expect(sub.state()).toBe('closed');
    },
  );

  it('never throws nor hangs when Redis is unreachable, and keeps retrying the subscription', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const states: string[] = [];
    const sub = subscribeChanges(url, 'c', () => {}, { retryMs: 20, onState: (s) => states.push(s) });
    const publisher = createChangePublisher(url, 'c');
    publisher.publish();
    publisher.publish();
    const started = Date.now();
    await publisher.close();
    expect(Date.now() - started).toBeLessThan(3_000);
    await until(() => sub.state() === 'down');
    await sub.close();
    expect(states).toEqual(['down', 'closed']);
  });

  it.skipIf(!REDIS_URL)('subscribes once Redis becomes reachable', async () => {
    // A relay that refuses at first, then forwards to the real Redis.
    const target = new URL(REDIS_URL as string);
    const { createConnection } = await import('node:net');
    let open = false;
    const relay = createServer((client) => {
      if (!open) return client.destroy();
      const upstream = createConnection({ host: target.hostname, port: Number(target.port || 6379) });
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((done) => relay.listen(0, '127.0.0.1', done));
    const { port } = relay.address() as { port: number };
    let woken = 0;
    const sub = subscribeChanges(`redis://127.0.0.1:${port}`, changeChannel('org_x'), () => woken++, {
      retryMs: 20,
      maxRetryMs: 50,
    });
    try {
      await until(() => sub.state() === 'down');
      expect(woken).toBe(0);
      open = true;
      await until(() => sub.state() === 'subscribed');
      expect(woken).toBe(1);
    } finally {
      await sub.close();
      relay.close();
    }
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}
