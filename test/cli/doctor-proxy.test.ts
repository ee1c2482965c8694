// `tollgate doctor` checks upstream reachability over the same connection as the gateway: through
// upstream.proxy_url, trusting upstream.ca_file, and says which way it went.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { type ConnectProxy, startConnectProxy } from '../helpers/connect-proxy.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';

interface DoctorCheck {
  check: string;
  ok: boolean;
  detail: string;
}

let ca: TestCa;
let fake: FakeUpstream;
let proxy: ConnectProxy;
let cli: CliHome;

beforeAll(async () => {
  ca = await createTestCa(['upstream.test']);
  fake = await startFakeUpstream({ tls: { key: ca.key, cert: ca.cert } });
  proxy = await startConnectProxy({ hosts: { 'upstream.test': '127.0.0.1' } });
  cli = await tempHome({
    TOLLGATE_UPSTREAM_URL: `https://upstream.test:${new URL(fake.url).port}`,
    TOLLGATE_UPSTREAM_CA_FILE: ca.caFile,
  });
  expect((await cli.run(['init'])).code).toBe(0);
});
afterAll(async () => {
  await cli.cleanup();
  await proxy.close();
  await fake.close();
  await ca.remove();
});

async function upstreamCheck(env: Record<string, string>): Promise<DoctorCheck | undefined> {
  const result = await cli.run(['doctor', '--json'], { env });
  const checks = JSON.parse(result.stdout) as DoctorCheck[];
  return checks.find((c) => c.check === 'upstream');
}

describe('tollgate doctor behind a proxy', () => {
  it('reaches the upstream through the proxy and names the route (not the password)', async () => {
    const check = await upstreamCheck({
      TOLLGATE_UPSTREAM_PROXY_URL: `http://u:hunter2@127.0.0.1:${proxy.port}`,
    });
    expect(check?.ok).toBe(true);
    expect(check?.detail).toContain(`(through the proxy 127.0.0.1:${proxy.port}, extra CA certificates`);
    expect(check?.detail).not.toContain('hunter2');
    expect(proxy.tunnels).toContain(`upstream.test:${new URL(fake.url).port}`);
  });

  it('without the proxy the name does not resolve, and the check fails', async () => {
    const check = await upstreamCheck({});
    expect(check?.ok).toBe(false);
    expect(check?.detail).toMatch(/unreachable \((ENOTFOUND|EAI_AGAIN); direct, extra CA/);
  });

  it('says what the proxy answered when it refuses the tunnel', async () => {
    const strict = await startConnectProxy({ credentials: 'u:right' });
    try {
      const check = await upstreamCheck({
        TOLLGATE_UPSTREAM_PROXY_URL: `http://u:wrong@127.0.0.1:${strict.port}`,
      });
      expect(check?.ok).toBe(false);
      expect(check?.detail).toContain('EPROXYTUNNEL: the proxy answered 407 to CONNECT');
      expect(check?.detail).not.toContain('wrong');
    } finally {
      await strict.close();
    }
  });
});
