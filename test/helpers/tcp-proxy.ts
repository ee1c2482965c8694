// A TCP relay on a fixed local port in front of a real server (Redis), which a test can take down —
// every connection cut, new ones refused, as when the server becomes unreachable — and bring back up
// on the same port; or cut only the connections whose client sent a given text (e.g. the connection
// name a Redis client sets with CLIENT SETNAME), while the others keep working; or hold its answers
// back for a while, as a server that hangs.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { connectRedis, type Redis } from '../../src/redis/connect.js';

export interface TcpProxy {
  /** e.g. redis://127.0.0.1:PORT for a Redis target. */
  readonly port: number;
  down(): Promise<void>;
  up(): Promise<void>;
  /** Holds back every answer (the target's bytes to its clients) until `release`: a server that hangs. */
  hold(): void;
  /** Sends what was held back, and from now on passes answers through again. */
  release(): void;
  /** Cuts, now and from now on, every connection whose client has sent text matching `pattern`. */
  block(pattern: RegExp): void;
  unblock(): void;
  close(): Promise<void>;
}

/** How much of what a client sends is kept to match `block` patterns against (its first commands). */
const HEAD_BYTES = 4096;

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const links = new Set<{ client: Socket; upstream: Socket; head: string }>();
  let server: Server | null = null;
  let port = 0;
  let blocked: RegExp | null = null;
  let holding = false;
  const held: Array<{ client: Socket; chunk: Buffer }> = [];

  const cut = (link: { client: Socket; upstream: Socket }) => {
    link.client.destroy();
    link.upstream.destroy();
  };

  const listen = async (): Promise<void> => {
    const s = createServer((client) => {
      const upstream = createConnection({ host: targetHost, port: targetPort });
      const link = { client, upstream, head: '' };
      links.add(link);
      const end = () => {
        cut(link);
        links.delete(link);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
      client.on('data', (chunk: Buffer) => {
        if (link.head.length < HEAD_BYTES) link.head += chunk.toString('latin1').slice(0, HEAD_BYTES);
        if (blocked?.test(link.head)) return end();
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (holding) held.push({ client, chunk });
        else client.write(chunk);
      });
    });
    await new Promise<void>((done, fail) => {
      s.once('error', fail);
      s.listen(port, '127.0.0.1', () => done());
    });
    port = (s.address() as { port: number }).port;
    server = s;
  };

  const down = async (): Promise<void> => {
    const s = server;
    server = null;
    for (const link of links) cut(link);
    links.clear();
    if (s) await new Promise<void>((done) => s.close(() => done()));
  };

  await listen();
  return {
    get port() {
      return port;
    },
    down,
    up: () => (server ? Promise.resolve() : listen()),
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const { client, chunk } of held.splice(0)) if (!client.destroyed) client.write(chunk);
    },
    block(pattern) {
      blocked = pattern;
      for (const link of links) if (pattern.test(link.head)) cut(link);
    },
    unblock() {
      blocked = null;
    },
    close: down,
  };
}

/**
 * A connection to the Redis at `url` (same database) through a relay whose answers a test can hold
 * back, opened as the gateway opens its own (`callerTimeouts`): a Redis that runs what it is sent but
 * answers late.
 */
export async function redisThroughRelay(
  url: string,
  name: string,
): Promise<{ proxy: TcpProxy; redis: Redis; close(): Promise<void> }> {
  const target = new URL(url);
  const proxy = await startTcpProxy(target.hostname, Number(target.port || 6379));
  const redis = await connectRedis(`redis://127.0.0.1:${proxy.port}${target.pathname}`, {
    name,
    callerTimeouts: true,
  });
  return {
    proxy,
    redis,
    async close() {
      proxy.release();
      redis.disconnect();
      await proxy.close();
    },
  };
}
