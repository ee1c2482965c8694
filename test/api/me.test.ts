// The self-service API (/api/v1/me) against a real server: authentication, profile with budgets,
// settings, own keys and own usage — each as the owner (positive control) and as someone else (404).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashGatewayKey } from '../../src/crypto/gateway-key.js';
import { summarise } from '../../src/usage/usage.repo.js';
import type { ApiJson, Harness } from '../helpers/gateway.js';
import { type MeFixture, SELF, SMALL, startMeFixture } from './me-fixture.js';

let f: MeFixture;
let h: Harness;
const api: MeFixture['api'] = (...args) => f.api(...args);
const auditRows: MeFixture['auditRows'] = (action) => f.auditRows(action);
let alice: string;
let aliceSecond: string;
let aliceInferenceOnly: string;
let bob: string;

beforeAll(async () => {
  f = await startMeFixture();
  ({ h, alice, aliceSecond, aliceInferenceOnly, bob } = f);
}, 30_000);

afterAll(async () => {
  await f?.close();
});

describe('authentication', () => {
  it('serves a self-service key and refuses an inference-only key (403) or none (401)', async () => {
    expect((await api('GET', '/api/v1/me', alice)).status).toBe(200);
    const inference = await api('GET', '/api/v1/me', aliceInferenceOnly);
    expect(inference.status).toBe(403);
    expect(inference.json.error.code).toBe('forbidden');
    expect((await api('GET', '/api/v1/me/settings', aliceInferenceOnly)).status).toBe(403);
    expect((await api('GET', '/api/v1/me', '')).status).toBe(401);
    // Neither audience's credential opens the other's API.
    expect((await api('GET', '/api/v1/me', h.adminToken)).status).toBe(401);
    expect((await api('GET', '/admin/v1/whoami', alice)).status).toBe(401);
    expect((await api('GET', '/admin/v1/whoami', h.adminToken)).status).toBe(200);
  });
});

describe('GET /api/v1/me', () => {
  it('shows the profile and every budget, with spent and limit only for the key and user scopes', async () => {
    await h.client(alice).messages.create(SMALL);
    const me = await api('GET', '/api/v1/me', alice);
    expect(me.status).toBe(200);
    expect(me.json).toMatchObject({
      name: 'alice',
      role: 'member',
      team: 'red',
      byok: 'preferred',
      email: null,
    });
    const byScope = new Map<string, ApiJson>(
      me.json.budgets.map((b: ApiJson) => [`${b.scope}/${b.period}`, b]),
    );
    expect([...byScope.keys()].sort()).toEqual(['key/month', 'org/month', 'team/month', 'user/month']);
    const user = byScope.get('user/month');
    expect(user.limit_usd).toBe('20.00');
    const spent = Number(user.spent_usd);
    expect(spent).toBeGreaterThan(0);
    expect(Number(user.remaining_usd)).toBeCloseTo(20 - spent, 6);
    expect(byScope.get('key/month')).toMatchObject({ limit_usd: '10.00' });
    for (const scope of ['team/month', 'org/month']) {
      const b = byScope.get(scope);
      expect(Object.keys(b).sort()).toEqual(['period', 'remaining_usd', 'resets_at', 'scope']);
      expect(Number(b.remaining_usd)).toBeLessThan(scope === 'team/month' ? 50 : 100);
    }
    // Bob is in another team and has no budgets of his own: only the org applies.
    const other = await api('GET', '/api/v1/me', bob);
    expect(other.json).toMatchObject({ name: 'bob', team: 'blue' });
    expect(other.json.budgets.map((b: ApiJson) => b.scope)).toEqual(['org']);
    expect(other.json.budgets[0]).not.toHaveProperty('limit_usd');
    // An admin sees the org's figures too, as in a budget refusal.
    await h.services.users.add(h.admin, { name: 'erin', role: 'admin', monthlyBudgetMicro: null });
    const erin = await api('GET', '/api/v1/me', await h.key({ user: 'erin', policy: SELF }));
    expect(erin.json.role).toBe('admin');
    expect(erin.json.budgets).toEqual([expect.objectContaining({ scope: 'org', limit_usd: '100.00' })]);
  });
});

describe('settings', () => {
  it('reads and sets the preferred model (audited); unknown models and fields are refused', async () => {
    const before = await api('GET', '/api/v1/me/settings', alice);
    expect(before.json).toEqual({
      hasAnthropicKey: false,
      hasGitHubToken: false,
      hasLinearKey: false,
      preferredModel: null,
      anthropicKeyHint: null,
    });
    const set = await api('PATCH', '/api/v1/me/settings', alice, { preferredModel: 'claude-sonnet-4-6' });
    expect(set.status).toBe(200);
    expect(set.json.preferredModel).toBe('claude-sonnet-4-6');
    const unknown = await api('PATCH', '/api/v1/me/settings', alice, { preferredModel: 'gpt-4o' });
    expect(unknown.status).toBe(400);
    const smuggled = await api('PATCH', '/api/v1/me/settings', alice, {
      preferredModel: null,
      role: 'admin',
    });
    expect(smuggled.status).toBe(400);
    expect(smuggled.json.error.fields).toEqual(['role']);
    expect((await api('GET', '/api/v1/me/settings', alice)).json.preferredModel).toBe('claude-sonnet-4-6');
    // Bob's settings are his own.
    expect((await api('GET', '/api/v1/me/settings', bob)).json.preferredModel).toBeNull();
    const audit = await auditRows('me.settings.update');
    expect(audit).toEqual([
      {
        actor: 'user:alice',
        target_id: expect.any(String),
        details: { preferred_model: 'claude-sonnet-4-6' },
      },
    ]);
  });
});

describe('keys', () => {
  it("lists only the caller's keys (hints), revokes their own, and answers 404 for anyone else's", async () => {
    const list = await api('GET', '/api/v1/me/keys', alice);
    expect(list.status).toBe(200);
    const aliceKeys = await h.services.keys.list({ user: 'alice' });
    expect(list.json.items.map((k: ApiJson) => k.id).sort()).toEqual(aliceKeys.map((k) => k.id).sort());
    expect(list.json.next_cursor).toBeNull();
    expect(JSON.stringify(list.json)).not.toContain(alice);
    const paged = await api('GET', '/api/v1/me/keys?limit=1', alice);
    expect(paged.json.items).toHaveLength(1);
    expect(typeof paged.json.next_cursor).toBe('string');

    const bobKey = (await h.services.keys.list({ user: 'bob' }))[0];
    if (!bobKey) throw new Error('bob has a key');
    const foreign = await api('DELETE', `/api/v1/me/keys/${bobKey.id}`, alice);
    const unknown = await api('DELETE', '/api/v1/me/keys/key_doesnotexist', alice);
    expect([foreign.status, unknown.status]).toEqual([404, 404]);
    expect(foreign.json.error.message.replace(bobKey.id, 'ID')).toBe(
      unknown.json.error.message.replace('key_doesnotexist', 'ID'),
    );
    expect((await h.services.keys.show(bobKey.id)).status).toBe('active');

    const second = await h.installation.db.kysely
      .selectFrom('gateway_keys')
      .select('id')
      .where('hash', '=', hashGatewayKey(h.installation.pepper, aliceSecond))
      .executeTakeFirstOrThrow();
    const revoked = await api('DELETE', `/api/v1/me/keys/${second.id}`, alice);
    expect([revoked.status, revoked.json.status]).toEqual([200, 'revoked']);
    expect((await api('GET', '/api/v1/me', aliceSecond)).status).toBe(401);

    const mint = await api('POST', '/api/v1/me/keys', alice, { name: 'more' });
    expect(mint.status).toBe(403);
    expect(mint.json.error.message).toContain('dashboard session');
  });
});

describe('usage', () => {
  it("returns the caller's own rows; a user filter is refused as an unknown field", async () => {
    const usage = await api('GET', '/api/v1/me/usage?by=model', alice);
    expect(usage.status).toBe(200);
    const aliceId = (await h.services.users.get('alice')).id;
    const expected = await summarise(h.installation.db, 'model', {
      since: 0,
      until: Date.now() + 1,
      userId: aliceId,
    });
    expect(usage.json.items.map((r: ApiJson) => [r.model, r.requests])).toEqual(
      expected.map((r) => [r.group, r.requests]),
    );
    expect(usage.json.items[0]).toHaveProperty('cost_usd');
    const byKey = await api('GET', '/api/v1/me/usage?by=key&since=7d', alice);
    const own = new Set((await h.services.keys.list({ user: 'alice' })).map((k) => k.id));
    expect(byKey.json.items.length).toBeGreaterThan(0);
    for (const row of byKey.json.items) expect(own.has(row.key)).toBe(true);
    const widened = await api('GET', '/api/v1/me/usage?user=bob', alice);
    expect(widened.status).toBe(400);
    expect(widened.json.error.fields).toEqual(['user']);
    expect((await api('GET', '/api/v1/me/usage?by=user', alice)).status).toBe(400);
  });
});
