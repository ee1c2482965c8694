// The connector every outbound dispatcher uses: plain HTTP destinations are tunnelled too, no_proxy
// connects directly, and a proxy that never answers is a bounded connect failure.

import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNoProxy } from '../../src/outbound/no-proxy.js';
import { createOutboundAgent } from '../../src/outbound/outbound.js';
import { openTunnel, proxyTarget } from '../../src/outbound/tunnel.js';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type ConnectProxy, startConnectProxy } from '../helpers/connect-proxy.js';

let fake: FakeUpstream;
let proxy: ConnectProxy;

beforeAll(async () => {
  fake = await startFakeUpstream();
  proxy = await startConnectProxy();
});
afterAll(async () => {
  await proxy.close();
  await fake.close();
});

describe('the outbound connector', () => {
  it('tunnels a plain http:// destination, and connects directly to a no_proxy host', async () => {
    const port = new URL(fake.url).port;
    const settings = (noProxy: string) => ({
      proxy: proxyTarget(proxy.url),
      noProxy: parseNoProxy(noProxy),
      ca: null,
    });
    const tunnelled = createOutboundAgent(settings(''));
    const direct = createOutboundAgent(settings(`127.0.0.1:${port}`));
    try {
      const first = await request(`${fake.url}/`, { dispatcher: tunnelled });
      await first.body.dump();
      expect(first.statusCode).toBe(200);
      expect(proxy.tunnels).toEqual([`127.0.0.1:${port}`]);
      const second = await request(`${fake.url}/`, { dispatcher: direct });
      await second.body.dump();
      expect(second.statusCode).toBe(200);
      expect(proxy.tunnels).toHaveLength(1);
    } finally {
      await tunnelled.close();
      await direct.close();
    }
  });

  it('gives up on a proxy that accepts the connection but never answers, within the timeout', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    try {
      const target = proxyTarget(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`);
      const started = Date.now();
      const error = await new Promise<Error | null>((resolve) =>
        openTunnel(target, 'api.anthropic.com', 443, 300, (e) => resolve(e)),
      );
      expect(error).toMatchObject({
        code: 'EPROXYTUNNEL',
        message: 'the proxy did not open a tunnel in time',
      });
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
