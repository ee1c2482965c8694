// Credential rotation with a grace period: the new secret is used at once, the previous one stays a
// failover until the grace ends, then it is deactivated and destroyed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

describe('credential rotation with grace', () => {
  let h: Harness;
  let now = Date.now();
  let oldSecret: string;
  let key: string;

  beforeAll(async () => {
    h = await startHarness({ clock: () => now });
    oldSecret = await h.orgCredential();
    key = await h.key();
  });
  afterAll(() => h.close());

  it('switches to the new secret at once and keeps the old one as a failover for the grace period', async () => {
    const fresh = canaryAnthropicKey();
    const rotated = await h.services.credentials.rotate(h.admin, 'org-key', fresh, true, 24 * 3600_000);
    expect(rotated.hint).toBe(`${fresh.slice(0, 16)}...${fresh.slice(-4)}`);
    await h.refresh();
    await h.client(key).messages.create(PARAMS);
    expect(h.fake.served.at(-1)?.apiKey).toBe(fresh);

    const previous = (await h.services.credentials.list()).find((c) => c.name === 'org-key.previous');
    expect(previous?.retireAt).toBe(now + 24 * 3600_000);
    expect(await h.services.credentials.reveal('org-key.previous')).toBe(oldSecret);

    // While the new key is overloaded, the previous one still serves.
    h.fake.enqueueFault({ kind: 'status', status: 529 }, { apiKey: fresh });
    await h.client(key).messages.create(PARAMS);
    expect(h.fake.served.slice(-2).map((s) => [s.apiKey, s.status])).toEqual([
      [fresh, 529],
      [oldSecret, 200],
    ]);
  });

  it('retires the previous secret when the grace period ends', async () => {
    now += 24 * 3600_000 + 1;
    // Even before the sweeper runs, the gateway stops failing over to it.
    const fresh = h.fake.served.at(-2)?.apiKey ?? '';
    h.fake.setDefaultFault({ kind: 'status', status: 529 });
    const before = h.fake.served.length;
    await expect(h.client(key).messages.create(PARAMS)).rejects.toMatchObject({ status: 529 });
    h.fake.setDefaultFault(null);
    expect(new Set(h.fake.served.slice(before).map((s) => s.apiKey))).toEqual(new Set([fresh]));
    const retired = await h.services.credentials.retireDue(h.admin);
    expect(retired).toEqual(['org-key.previous']);
    await h.refresh();
    expect((await h.services.credentials.list()).map((c) => c.name)).toEqual(['org-key']);
    await expect(h.services.credentials.reveal('org-key.previous')).rejects.toMatchObject({
      code: 'not_found',
    });
    const row = await h.installation.db.kysely
      .selectFrom('credentials')
      .selectAll()
      .where('name', '=', 'org-key.previous')
      .executeTakeFirst();
    expect(row?.ciphertext.length).toBe(0);
    const audit = await h.services.audit.list({ limit: 1000 });
    expect(audit.map((e) => e.action)).toEqual(
      expect.arrayContaining(['credential.rotate', 'credential.retire']),
    );
  });
});
