// Locked-down networks: the gateway reaches a TLS upstream signed by a private CA only with
// upstream.ca_file, goes through upstream.proxy_url for every connection (CONNECT tunnels), and connects
// directly to hosts upstream.no_proxy / NO_PROXY lists. Driven with the official SDK.
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startReceiver, until } from '../alerts/receiver.js';
import { type ConnectProxy, startConnectProxy } from '../helpers/connect-proxy.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';

// A name only the proxy can resolve (.test is reserved): reaching it proves the proxy was used.
const UPSTREAM_NAME = 'upstream.test';

let ca: TestCa;
let proxy: ConnectProxy;
let harness: Harness | null = null;

beforeAll(async () => {
  ca = await createTestCa([UPSTREAM_NAME, '127.0.0.1']);
  proxy = await startConnectProxy({ hosts: { [UPSTREAM_NAME]: '127.0.0.1' } });
});
afterEach(async () => {
  await harness?.close();
  harness = null;
  proxy.tunnels.length = 0;
});
afterAll(async () => {
  await proxy.close();
  await ca.remove();
});

/** A harness in front of the TLS fake; `upstream` is the YAML of the upstream section (beyond the URL). */
async function start(
  upstream: string,
  options: { env?: Record<string, string>; upstreamUrl?: (fakeUrl: string) => string } = {},
) {
  // The harness's fake serves HTTPS with the CA's certificate.
  const h = await startHarness({
    fakeOptions: { tls: { key: ca.key, cert: ca.cert } },
    yaml: `upstream: { ${upstream} }\n`,
    env: options.env ?? {},
    ...(options.upstreamUrl ? { upstreamUrl: options.upstreamUrl } : {}),
  });
  harness = h;
  return h;
}

function message(client: Anthropic) {
  return client.messages.create({
    model: 'claude-sonnet-4-6',
    max_tokens: 16,
    messages: [{ role: 'user', content: 'hello' }],
  });
}

describe('upstream.ca_file', () => {
  it('lets the gateway reach an upstream whose certificate a private CA signed', async () => {
    const h = await start(`ca_file: "${ca.caFile}"`);
    expect(h.fake.url).toMatch(/^https:\/\/127\.0\.0\.1:/);
    await h.orgCredential(); // validated against the TLS upstream
    const answer = await message(h.client(await h.key()));
    expect(answer.type).toBe('message');
    expect(h.fake.served.length).toBeGreaterThanOrEqual(2);
  });

  it('without it the same upstream is refused with a clear upstream error, and nothing is served', async () => {
    const h = await start('timeout_ms: 20000');
    await h.services.credentials.add(h.admin, {
      name: 'org-key',
      provider: 'anthropic',
      secret: canaryAnthropicKey(),
      validate: false,
    });
    const error = await message(h.client(await h.key())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    const api = error as InstanceType<typeof Anthropic.APIError>;
    expect(api.status).toBe(502);
    expect(api.message).toContain('the upstream API could not be reached');
    expect(h.fake.served).toHaveLength(0);
  });
});

describe('upstream.proxy_url', () => {
  /** Points the gateway at the fake by the name only the proxy can resolve. */
  const byName = (url: string) => `https://${UPSTREAM_NAME}:${new URL(url).port}`;

  it('sends every upstream connection through the proxy, to a name only the proxy resolves', async () => {
    const h = await start(`proxy_url: "${proxy.url}", ca_file: "${ca.caFile}"`, { upstreamUrl: byName });
    const port = new URL(h.fake.url).port;
    await h.orgCredential(); // the credential check goes through the proxy too
    const client = h.client(await h.key());
    expect((await message(client)).type).toBe('message');
    const stream = await client.messages.create({
      model: 'claude-sonnet-4-6',
      max_tokens: 16,
      stream: true,
      messages: [{ role: 'user', content: 'hello again' }],
    });
    let events = 0;
    for await (const _event of stream) events++;
    expect(events).toBeGreaterThan(0);
    await Promise.all([message(client), message(client), message(client)]);
    // 1 check + 5 messages, all served; the gateway cannot resolve the name itself, so each came
    // through a tunnel, and every tunnel the proxy opened went to the upstream.
    expect(h.fake.served).toHaveLength(6);
    expect(proxy.tunnels.length).toBeGreaterThanOrEqual(1);
    expect(new Set(proxy.tunnels)).toEqual(new Set([`${UPSTREAM_NAME}:${port}`]));
  });

  it('the Admin API client goes through the proxy as well', async () => {
    const h = await start(`proxy_url: "${proxy.url}", ca_file: "${ca.caFile}"`, { upstreamUrl: byName });
    await h.services.credentials.add(h.admin, {
      name: 'admin',
      provider: 'anthropic-admin',
      secret: canaryAnthropicKey('admin01'),
      validate: false,
    });
    expect(proxy.tunnels).toHaveLength(0);
    expect(await h.services.anthropicAdmin.listWorkspaces()).toEqual([]);
    expect(proxy.tunnels.length).toBeGreaterThanOrEqual(1);
    expect(h.fake.served.some((r) => r.path.startsWith('/v1/organizations/'))).toBe(true);
  });

  it('connects directly to a host NO_PROXY lists, and through the proxy when it is not listed', async () => {
    // Listed: the loopback upstream is reached without a single tunnel.
    const direct = await start(`proxy_url: "${proxy.url}", ca_file: "${ca.caFile}"`, {
      env: { NO_PROXY: 'localhost,127.0.0.1' },
    });
    expect(direct.config.upstream.no_proxy).toBe('localhost,127.0.0.1');
    await direct.orgCredential();
    expect((await message(direct.client(await direct.key()))).type).toBe('message');
    expect(proxy.tunnels).toHaveLength(0);
    await direct.close();
    harness = null;

    // Positive control, same upstream, not listed: loopback gets no special case, so it is tunnelled.
    const proxied = await start(`proxy_url: "${proxy.url}", ca_file: "${ca.caFile}"`, {
      env: { NO_PROXY: 'internal.example' },
    });
    await proxied.orgCredential();
    expect((await message(proxied.client(await proxied.key()))).type).toBe('message');
    expect(proxy.tunnels).toContain(`127.0.0.1:${new URL(proxied.fake.url).port}`);
  });

  it('a proxy that refuses the tunnel is an upstream that cannot be reached (502), nothing sent', async () => {
    const strict = await startConnectProxy({ credentials: 'tollgate:right-password' });
    try {
      const h = await start(`ca_file: "${ca.caFile}"`, {
        env: { TOLLGATE_UPSTREAM_PROXY_URL: strict.url.replace('//', '//tollgate:wrong-password@') },
      });
      await h.services.credentials.add(h.admin, {
        name: 'org-key',
        provider: 'anthropic',
        secret: canaryAnthropicKey(),
        validate: false,
      });
      const error = await message(h.client(await h.key())).catch((e: unknown) => e);
      expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(502);
      expect(strict.refused.length).toBeGreaterThanOrEqual(1);
      expect(h.fake.served).toHaveLength(0);
    } finally {
      await strict.close();
    }
  });

  it('a proxy with the right password opens the tunnel (positive control)', async () => {
    const strict = await startConnectProxy({ credentials: 'tollgate:right-password' });
    try {
      const h = await start(`ca_file: "${ca.caFile}"`, {
        env: { TOLLGATE_UPSTREAM_PROXY_URL: strict.url.replace('//', '//tollgate:right-password@') },
      });
      await h.orgCredential();
      expect((await message(h.client(await h.key()))).type).toBe('message');
      expect(strict.tunnels.length).toBeGreaterThanOrEqual(1);
      expect(strict.refused).toHaveLength(0);
    } finally {
      await strict.close();
    }
  });

  it('alert delivery posts the webhook through the proxy (a credential marked invalid)', async () => {
    const receiver = await startReceiver();
    try {
      const h = await startHarness({
        fakeOptions: { tls: { key: ca.key, cert: ca.cert } },
        yaml: `upstream: { proxy_url: "${proxy.url}", ca_file: "${ca.caFile}" }\n`,
        env: { TOLLGATE_ALERTS_WEBHOOK_URL: receiver.url },
        upstreamUrl: byName,
        alerts: { budgetDelayMs: 10, delivery: { backoffMs: 50, maxBackoffMs: 200, pollMs: 200 } },
      });
      harness = h;
      const revoked = await h.orgCredential('org-a');
      await h.orgCredential('org-b');
      h.fake.revokeKey(revoked);
      await message(h.client(await h.key()));
      await until(
        'the POST',
        () => receiver.received.length,
        (n) => n === 1,
      );
      expect(receiver.received[0]?.body).toMatchObject({ kind: 'credential_invalid', name: 'org-a' });
      expect(proxy.tunnels).toContain(`127.0.0.1:${receiver.port}`);
    } finally {
      await receiver.close();
    }
  });
});
