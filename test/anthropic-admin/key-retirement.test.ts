// Key retirement over time (a movable clock): a failure is retried only after its delay, and the
// server's background sweep (gateway start) disables the old key once due — exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway } from '../../src/gateway/gateway.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

const ADMIN_KEY = canaryAnthropicKey('admin01');
const OLD = canaryAnthropicKey('api03');
const NEW = canaryAnthropicKey('api03');

let now = Date.now();
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ clock: () => now });
  await h.services.credentials.add(h.admin, {
    name: 'org-admin',
    provider: 'anthropic-admin',
    secret: ADMIN_KEY,
    validate: false,
  });
  await h.services.credentials.add(h.admin, {
    name: 'main',
    provider: 'anthropic',
    secret: OLD,
    validate: false,
  });
  h.fake.admin.addApiKey({ id: 'apikey_old', secret: OLD });
});
afterAll(async () => {
  await h.close();
});

const status = () => h.fake.admin.apiKeys().find((k) => k.id === 'apikey_old')?.status;
const keyWrites = () =>
  h.fake.served.filter((r) => r.method === 'POST' && r.path === '/v1/organizations/api_keys/apikey_old')
    .length;

describe('key retirement in the background', () => {
  it('retries a failure after its delay, and the server sweep retires the key once due', async () => {
    await h.services.credentials.rotate(h.admin, 'main', NEW, false, 60_000, { retire: true });
    expect(await h.services.keyRetirements.runDue(h.admin)).toEqual([]);

    now += 60_001;
    for (let i = 0; i < 4; i++)
      h.fake.enqueueFault({ kind: 'status', status: 529 }, { pathPrefix: '/v1/organizations/' });
    const [failed] = await h.services.keyRetirements.runDue(h.admin);
    expect(failed).toMatchObject({ outcome: 'failed', credential: 'main' });
    expect(status()).toBe('active');

    // Not before the retry delay (a minute after the first failure).
    now += 30_000;
    expect(await h.services.keyRetirements.runDue(h.admin)).toEqual([]);
    expect(status()).toBe('active');

    // After it, a server's sweep at start does it, off the start-up path; close waits for it.
    now += 31_000;
    const gateway = createGateway({ installation: h.installation, clock: () => now }, h.config);
    await gateway.start();
    await gateway.close();
    expect(status()).toBe('inactive');
    expect(keyWrites()).toBe(1);

    const [row] = await h.services.keyRetirements.list();
    expect(row).toMatchObject({ state: 'done', attempts: 2, anthropicKeyId: 'apikey_old' });
    expect(await h.services.keyRetirements.runDue(h.admin)).toEqual([]);
    expect(keyWrites()).toBe(1);
  });
});
