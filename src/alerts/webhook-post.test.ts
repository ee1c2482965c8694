// One webhook POST against local servers: the checked address is the one connected to (a resolver that
// answers a link-local address, alone or among others, stops it before any connection), redirects are
// not followed, a deadline ends a hung receiver, errors never carry the URL.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { postWebhook, type Resolve } from './webhook-post.js';

let servers: Server[] = [];
afterEach(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
  servers = [];
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ port: number; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    handler?.(req, res);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, hits };
}

const BASE = { timeoutMs: 2_000, allowLinkLocal: false, headers: { 'user-agent': 'test' } };
const answering =
  (...addresses: string[]): Resolve =>
  (_host, _family, callback) =>
    callback(
      null,
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );

describe('postWebhook', () => {
  it('delivers to a name that resolves to loopback (positive control)', async () => {
    const s = await serve((_req, res) => res.end('ok'));
    const result = await postWebhook(`http://hooks.test:${s.port}/T/B/tok`, '{"text":"hi"}', {
      ...BASE,
      resolve: answering('127.0.0.1'),
    });
    expect(result).toEqual({ ok: true });
    expect(s.hits).toEqual(['/T/B/tok']);
  });

  it('refuses a name that resolves to a link-local address, or to one among others (rebinding)', async () => {
    const s = await serve((_req, res) => res.end('ok'));
    for (const resolve of [answering('169.254.169.254'), answering('127.0.0.1', 'fe80::1')]) {
      const result = await postWebhook(`http://hooks.test:${s.port}/T/B/tok`, '{}', { ...BASE, resolve });
      expect(result).toEqual({
        ok: false,
        retry: false,
        error: 'refused: the host resolves to a link-local or metadata address',
      });
    }
    expect(s.hits).toEqual([]);
    // Allowed explicitly, the same answer is used.
    const allowed = await postWebhook(`http://hooks.test:${s.port}/T/B/tok`, '{}', {
      ...BASE,
      allowLinkLocal: true,
      resolve: answering('127.0.0.1', 'fe80::1'),
    });
    expect(allowed).toEqual({ ok: true });
  });

  it('refuses literal link-local addresses and metadata names before connecting', async () => {
    for (const url of [
      'http://169.254.169.254/x',
      'http://[fe80::1]/x',
      'http://metadata.google.internal/x',
    ]) {
      const result = await postWebhook(url, '{}', BASE);
      expect(result.ok, url).toBe(false);
      expect(result).toMatchObject({ retry: false });
    }
  });

  it('does not follow a redirect, and retries 5xx, 429 and connection failures', async () => {
    const target = await serve((_req, res) => res.end('ok'));
    const redirect = await serve((_req, res) =>
      res.writeHead(307, { location: `http://127.0.0.1:${target.port}/elsewhere` }).end(),
    );
    expect(await postWebhook(`http://127.0.0.1:${redirect.port}/h`, '{}', BASE)).toEqual({
      ok: false,
      retry: false,
      error: 'HTTP 307 (redirects are not followed)',
    });
    expect(target.hits).toEqual([]);
    const busy = await serve((_req, res) => res.writeHead(503).end());
    expect(await postWebhook(`http://127.0.0.1:${busy.port}/h`, '{}', BASE)).toEqual({
      ok: false,
      retry: true,
      error: 'HTTP 503',
    });
    const gone = await serve(() => {});
    const port = gone.port;
    await new Promise((resolve) => servers.pop()?.close(resolve));
    expect(await postWebhook(`http://127.0.0.1:${port}/h`, '{}', BASE)).toEqual({
      ok: false,
      retry: true,
      error: 'ECONNREFUSED',
    });
  });

  it('gives up on a receiver that never answers at the deadline', async () => {
    const hung = await serve(() => {});
    const started = Date.now();
    const result = await postWebhook(`http://127.0.0.1:${hung.port}/tok`, '{}', { ...BASE, timeoutMs: 200 });
    expect(result).toEqual({ ok: false, retry: true, error: 'timeout' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
