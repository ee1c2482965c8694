// The outbound settings beyond the gateway: alert webhooks and the identity provider go through
// upstream.proxy_url and trust upstream.ca_file, and the proxy is no way around the webhook address check.
import type { LookupAddress } from 'node:dns';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type PostOptions, postWebhook, type Resolve } from '../../src/alerts/webhook-post.js';
import { createOidcClient, type OidcSettings } from '../../src/auth/oidc-client.js';
import type { Config } from '../../src/config/load.js';
import {
  describeRoute,
  type OutboundSettings,
  outboundSettings,
  sharedOutbound,
} from '../../src/outbound/outbound.js';
import { type ConnectProxy, startConnectProxy } from '../helpers/connect-proxy.js';
import { startOidcProvider, type TestProvider } from '../helpers/oidc-provider.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';

const HOOK_NAME = 'hooks.test';

let ca: TestCa;
let proxy: ConnectProxy;
let receiver: Server;
let hookPort = 0;
const received: string[] = [];

function upstreamSection(over: Partial<Config['upstream']>): Config['upstream'] {
  return {
    anthropic_base_url: 'https://api.anthropic.com',
    timeout_ms: 600_000,
    max_retries: 2,
    validate_timeout_ms: 10_000,
    proxy_url: null,
    no_proxy: '',
    ca_file: null,
    ...over,
  };
}

function settings(over: Partial<Config['upstream']>): OutboundSettings {
  const s = outboundSettings(upstreamSection(over));
  if (s === null) throw new Error('expected outbound settings');
  return s;
}

beforeAll(async () => {
  ca = await createTestCa([HOOK_NAME, '127.0.0.1']);
  proxy = await startConnectProxy({ hosts: { [HOOK_NAME]: '127.0.0.1' } });
  receiver = createServer({ key: ca.key, cert: ca.cert }, (req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      received.push(body);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
  hookPort = (receiver.address() as AddressInfo).port;
});
afterEach(() => {
  proxy.tunnels.length = 0;
  received.length = 0;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  await proxy.close();
  await ca.remove();
});

/** This host's resolver, as the test wants it to answer for the webhook's name. */
const resolveTo =
  (address: string | null): Resolve =>
  (_hostname, _family, callback) => {
    if (address === null) {
      const error: NodeJS.ErrnoException = new Error('not found');
      error.code = 'ENOTFOUND';
      callback(error, []);
    } else callback(null, [{ address, family: address.includes(':') ? 6 : 4 } as LookupAddress]);
  };

function post(url: string, options: Partial<PostOptions>) {
  return postWebhook(url, '{"alert":"budget"}', {
    timeoutMs: 5_000,
    allowLinkLocal: false,
    headers: {},
    ...options,
  });
}

describe('alert webhooks through the proxy', () => {
  const viaProxy = () => settings({ proxy_url: proxy.url, ca_file: ca.caFile });

  it('are delivered through a tunnel to the host by name, TLS end to end with the extra CA', async () => {
    const result = await post(`https://${HOOK_NAME}:${hookPort}/hook`, {
      outbound: viaProxy(),
      resolve: resolveTo('127.0.0.1'),
    });
    expect(result).toEqual({ ok: true });
    expect(proxy.tunnels).toEqual([`${HOOK_NAME}:${hookPort}`]);
    expect(received).toEqual(['{"alert":"budget"}']);
  });

  it('are refused before the proxy is asked when the host resolves to a metadata address here', async () => {
    const result = await post(`https://${HOOK_NAME}:${hookPort}/hook`, {
      outbound: viaProxy(),
      resolve: resolveTo('169.254.169.254'),
    });
    expect(result).toMatchObject({ ok: false, retry: false });
    expect(result.ok ? '' : result.error).toContain('link-local or metadata');
    expect(proxy.tunnels).toHaveLength(0);
    expect(received).toHaveLength(0);
  });

  it('are refused for a metadata name, and not sent when the name does not resolve here', async () => {
    const named = await post('http://metadata.google.internal/x', {
      outbound: viaProxy(),
      resolve: resolveTo('127.0.0.1'),
    });
    expect(named).toMatchObject({ ok: false, retry: false });
    const unresolved = await post(`https://${HOOK_NAME}:${hookPort}/hook`, {
      outbound: viaProxy(),
      resolve: resolveTo(null),
    });
    expect(unresolved).toEqual({ ok: false, retry: true, error: 'ENOTFOUND' });
    expect(proxy.tunnels).toHaveLength(0);
  });

  it('go directly to a host upstream.no_proxy lists (no tunnel), still trusting the extra CA', async () => {
    const result = await post(`https://127.0.0.1:${hookPort}/hook`, {
      outbound: settings({ proxy_url: proxy.url, no_proxy: '127.0.0.1', ca_file: ca.caFile }),
    });
    expect(result).toEqual({ ok: true });
    expect(proxy.tunnels).toHaveLength(0);
    expect(received).toHaveLength(1);
  });

  it('trust the private CA only with ca_file (positive/negative pair, no proxy)', async () => {
    const url = `https://127.0.0.1:${hookPort}/hook`;
    const without = await post(url, {});
    expect(without).toMatchObject({ ok: false, retry: true });
    expect(received).toHaveLength(0);
    expect(await post(url, { outbound: settings({ ca_file: ca.caFile }) })).toEqual({ ok: true });
    expect(received).toHaveLength(1);
  });
});

describe('the identity provider through the proxy', () => {
  let idp: TestProvider;
  beforeAll(async () => {
    idp = await startOidcProvider({ redirectUri: 'http://127.0.0.1:1/auth/oidc/callback' });
  });
  afterAll(() => idp.close());

  const oidcSettings = (): OidcSettings => ({
    issuer: idp.issuer,
    client_id: idp.clientId,
    client_secret: idp.clientSecret,
    scopes: ['openid', 'email'],
    groups_claim: 'groups',
    group_map: {},
    allowed_domains: [],
    recheck_minutes: 10,
  });
  const pending = { state: 's', nonce: 'n', verifier: 'v'.repeat(43), createdAt: Date.now() };

  it('discovery goes through a tunnel', async () => {
    const outbound = sharedOutbound(upstreamSection({ proxy_url: proxy.url }));
    const client = createOidcClient(oidcSettings(), 'http://127.0.0.1:1/auth/oidc/callback', outbound?.fetch);
    const url = await client.authorizationUrl(pending);
    expect(url.origin).toBe(idp.issuer);
    expect(proxy.tunnels).toContain(new URL(idp.issuer).host);
  });

  it('discovery fails as an outage when the proxy refuses, so the fetch really is the proxy', async () => {
    const strict = await startConnectProxy({ credentials: 'tollgate:secret' });
    try {
      const outbound = sharedOutbound(upstreamSection({ proxy_url: strict.url }));
      const client = createOidcClient(oidcSettings(), 'http://127.0.0.1:1/cb', outbound?.fetch);
      await expect(client.authorizationUrl(pending)).rejects.toMatchObject({ code: 'upstream_unreachable' });
      expect(strict.refused).toContain(new URL(idp.issuer).host);
    } finally {
      await strict.close();
    }
  });
});

describe('outbound settings', () => {
  it('are absent with neither proxy_url nor ca_file (callers keep their default dispatchers)', () => {
    expect(outboundSettings(upstreamSection({ no_proxy: 'example.com' }))).toBeNull();
    expect(sharedOutbound(upstreamSection({}))).toBeNull();
  });

  it('are built once per config: every caller shares one dispatcher', () => {
    const upstream = upstreamSection({ proxy_url: proxy.url });
    expect(sharedOutbound(upstream)?.dispatcher).toBe(sharedOutbound(upstream)?.dispatcher);
  });

  it('never show the proxy password in the route doctor prints', () => {
    const s = settings({ proxy_url: 'http://user:hunter2@proxy.corp:3128', no_proxy: '.internal' });
    const route = describeRoute(s, new URL('https://api.anthropic.com/v1/models'));
    expect(route).toBe('through the proxy proxy.corp:3128');
    expect(describeRoute(s, new URL('https://sso.internal/x'))).toBe('direct (upstream.no_proxy)');
    expect(describeRoute(null, new URL('https://api.anthropic.com'))).toBe('direct');
    expect(s.proxy?.authorization).toBe(`Basic ${Buffer.from('user:hunter2').toString('base64')}`);
  });
});
