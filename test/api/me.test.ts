// The self-service API (/api/v1/me) end to end against a real server, the fake Anthropic upstream and
// fake GitHub/Linear APIs: every route as the owner (positive control) and as someone else (404),
// inference-only keys refused, credentials validated, stored, used and throttled, audit rows present,
// and no secret anywhere in the database file or in any answer.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashGatewayKey } from '../../src/crypto/gateway-key.js';
import { summarise } from '../../src/usage/usage.repo.js';
import { type FakeProviders, startFakeProviders } from '../fake-providers/index.js';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey, findLeaks } from '../helpers/secrets.js';

const SELF = { scopes: ['inference', 'self-service'] as ('inference' | 'self-service')[] };
const SMALL = {
  model: 'claude-haiku-4-5',
  max_tokens: 5,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

let h: Harness;
let providers: FakeProviders;
/** Every answer body seen, searched for secrets at the end. */
const answers: string[] = [];
/** Every secret sent (good and bad), none of which may be stored or echoed in the clear. */
const secrets: string[] = [];
let alice: string;
let aliceSecond: string;
let bob: string;
let aliceInferenceOnly: string;

async function api(method: string, path: string, token: string, body?: unknown) {
  const answer = await h.api(method, path, { token, ...(body === undefined ? {} : { body }) });
  answers.push(JSON.stringify(answer.json));
  return answer;
}

async function auditRows(
  action: string,
): Promise<Array<{ actor: string; details: ApiJson; target_id: string | null }>> {
  const rows = await h.installation.db.kysely
    .selectFrom('audit_log')
    .select(['actor', 'details', 'target_id'])
    .where('action', '=', action)
    .orderBy('seq')
    .execute();
  return rows.map((r) => ({
    actor: r.actor,
    target_id: r.target_id,
    details: typeof r.details === 'string' ? JSON.parse(r.details) : r.details,
  }));
}

beforeAll(async () => {
  providers = await startFakeProviders();
  h = await startHarness({ env: { ...providers.env, TOLLGATE_CLAUDE_MAX_MONTHLY_SPEND_USD: '100' } });
  await h.orgCredential();
  const admin = h.admin;
  await h.services.teams.add(admin, { name: 'red', monthlyBudgetMicro: 50_000_000 });
  await h.services.users.add(admin, { name: 'alice', team: 'red', monthlyBudgetMicro: 20_000_000 });
  alice = await h.key({ user: 'alice', policy: { ...SELF, monthlyBudgetMicro: 10_000_000 } });
  aliceSecond = await h.key({ user: 'alice', policy: SELF });
  aliceInferenceOnly = await h.key({ user: 'alice' });
  bob = await h.key({ user: 'bob', team: 'blue', policy: SELF });
}, 30_000);

afterAll(async () => {
  await h?.close();
  await providers?.close();
});

describe('authentication', () => {
  it('serves a self-service key and refuses an inference-only key (403) or none (401)', async () => {
    expect((await api('GET', '/api/v1/me', alice)).status).toBe(200);
    const inference = await api('GET', '/api/v1/me', aliceInferenceOnly);
    expect(inference.status).toBe(403);
    expect(inference.json.error.code).toBe('forbidden');
    expect((await api('GET', '/api/v1/me/settings', aliceInferenceOnly)).status).toBe(403);
    expect((await api('GET', '/api/v1/me', '')).status).toBe(401);
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

describe('PUT /api/v1/me/credentials/anthropic', () => {
  it('refuses a bad key and stores nothing; stores a good one, which then serves the user', async () => {
    const bad = `sk-ant-api03-live-bad-${canaryAnthropicKey().slice(-40)}`;
    const good = canaryAnthropicKey();
    const next = canaryAnthropicKey();
    secrets.push(bad, good, next);
    const smuggled = await api('PUT', '/api/v1/me/credentials/anthropic', alice, {
      secret: good,
      role: 'admin',
    });
    expect(smuggled.status).toBe(400);
    expect(smuggled.json.error.fields).toEqual(['role']);

    const refused = await api('PUT', '/api/v1/me/credentials/anthropic', alice, { secret: bad });
    expect(refused.status).toBe(400);
    expect(refused.json.error.code).toBe('credential_rejected');
    const none = await h.installation.db.kysely
      .selectFrom('credentials')
      .select('id')
      .where('owner_type', '=', 'user')
      .execute();
    expect(none).toEqual([]);

    const stored = await api('PUT', '/api/v1/me/credentials/anthropic', alice, { secret: good });
    expect(stored.status, h.logs().slice(-3000)).toBe(200);
    expect(stored.json).toMatchObject({
      hasAnthropicKey: true,
      anthropicKeyHint: `${good.slice(0, 16)}...${good.slice(-4)}`,
    });
    await h.refresh();
    h.fake.reset();
    await h.client(alice).messages.create(SMALL);
    expect(h.fake.served.filter((r) => r.path === '/v1/messages').map((r) => r.apiKey)).toEqual([good]);

    // A replacement shreds the previous self-service secret in the same transaction.
    expect((await api('PUT', '/api/v1/me/credentials/anthropic', alice, { secret: next })).status).toBe(200);
    const rows = await h.installation.db.kysely
      .selectFrom('credentials')
      .select(['removed_at', 'ciphertext', 'owner_id'])
      .where('owner_type', '=', 'user')
      .execute();
    expect(rows.filter((r) => r.removed_at === null)).toHaveLength(1);
    expect(rows.filter((r) => r.removed_at !== null).map((r) => r.ciphertext.length)).toEqual([0]);
    await h.refresh();
    h.fake.reset();
    await h.client(alice).messages.create(SMALL);
    expect(h.fake.served.filter((r) => r.path === '/v1/messages').map((r) => r.apiKey)).toEqual([next]);
    // Bob's requests still use the org credential, not Alice's.
    h.fake.reset();
    await h.client(bob).messages.create(SMALL);
    expect(h.fake.served.filter((r) => r.path === '/v1/messages').map((r) => r.apiKey)).not.toContain(next);
    expect((await api('GET', '/api/v1/me/settings', bob)).json.hasAnthropicKey).toBe(false);

    const audit = (await auditRows('me.credential.set')).filter((r) => r.actor === 'user:alice');
    expect(audit.map((r) => [r.details.outcome, r.details.provider])).toEqual([
      ['rejected', 'anthropic'],
      ['stored', 'anthropic'],
      ['stored', 'anthropic'],
    ]);
    expect(audit[1]?.details.hint).toBe(`...${good.slice(-4)}`);
  });
});

describe('PUT /api/v1/me/credentials/github|linear', () => {
  it('checks GitHub tokens with GET /user and Linear keys with the viewer query', async () => {
    const dave = await h.key({ user: 'dave', policy: SELF });
    const badGitHub = `ghp_testbad${'B'.repeat(29)}`;
    const badLinear = `lin_api_testbad${'B'.repeat(25)}`;
    secrets.push(badGitHub, badLinear, providers.goodGitHubToken, providers.goodLinearKey);

    const ghBad = await api('PUT', '/api/v1/me/credentials/github', dave, { secret: badGitHub });
    expect([ghBad.status, ghBad.json.error.code]).toEqual([400, 'credential_rejected']);
    expect(providers.github.at(-1)).toMatchObject({
      method: 'GET',
      path: '/user',
      authorization: `Bearer ${badGitHub}`,
    });
    const linBad = await api('PUT', '/api/v1/me/credentials/linear', dave, { secret: badLinear });
    expect([linBad.status, linBad.json.error.code]).toEqual([400, 'credential_rejected']);
    expect(providers.linear.at(-1)).toMatchObject({
      method: 'POST',
      path: '/graphql',
      authorization: badLinear,
    });
    expect((await api('GET', '/api/v1/me/settings', dave)).json).toMatchObject({
      hasGitHubToken: false,
      hasLinearKey: false,
    });

    const gh = await api('PUT', '/api/v1/me/credentials/github', dave, { secret: providers.goodGitHubToken });
    expect(gh.status).toBe(200);
    expect(gh.json.hasGitHubToken).toBe(true);
    const lin = await api('PUT', '/api/v1/me/credentials/linear', dave, { secret: providers.goodLinearKey });
    expect(lin.status).toBe(200);
    expect(lin.json).toMatchObject({ hasGitHubToken: true, hasLinearKey: true, hasAnthropicKey: false });
    const stored = await h.services.credentials.list({ owner: { type: 'user', name: 'dave' } });
    expect(stored.map((c) => c.provider).sort()).toEqual(['github', 'linear']);

    // DELETE shreds it; a second DELETE (nothing left) is 404. Another user's credential is out of reach.
    expect((await api('DELETE', '/api/v1/me/credentials/linear', bob)).status).toBe(404);
    const removed = await api('DELETE', '/api/v1/me/credentials/linear', dave);
    expect([removed.status, removed.json.hasLinearKey]).toEqual([200, false]);
    expect((await api('DELETE', '/api/v1/me/credentials/linear', dave)).status).toBe(404);
    expect((await auditRows('me.credential.remove')).map((r) => [r.actor, r.details.provider])).toEqual([
      ['user:dave', 'linear'],
    ]);
    expect(
      (await api('PUT', '/api/v1/me/credentials/generic', dave, { secret: 'x'.repeat(20) })).status,
    ).toBe(400);
  });

  it('`credential add --provider github` validates against the same endpoint', async () => {
    await expect(
      h.services.credentials.add(h.admin, {
        name: 'gh-bad',
        provider: 'github',
        secret: `ghp_testbad${'C'.repeat(29)}`,
        validate: true,
      }),
    ).rejects.toMatchObject({ code: 'credential_rejected' });
    const added = await h.services.credentials.add(h.admin, {
      name: 'gh-good',
      provider: 'github',
      secret: providers.goodGitHubToken,
      validate: true,
    });
    expect(added.provider).toBe('github');
  });
});

describe('throttling', () => {
  it('answers 429 with retry-after after 5 attempts per user, audited as throttled', async () => {
    const carol = await h.key({ user: 'carol', policy: SELF });
    for (let i = 0; i < 5; i++) {
      const bad = `sk-ant-api03-live-bad-${i}-${canaryAnthropicKey().slice(-30)}`;
      secrets.push(bad);
      const control = await api('PUT', '/api/v1/me/credentials/anthropic', carol, { secret: bad });
      expect(control.status).toBe(400);
    }
    const good = canaryAnthropicKey();
    secrets.push(good);
    const served = h.fake.served.length;
    const throttled = await api('PUT', '/api/v1/me/credentials/anthropic', carol, { secret: good });
    expect(throttled.status).toBe(429);
    expect(throttled.json.error.code).toBe('rate_limited');
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    // A throttled attempt asks nobody and stores nothing.
    expect(h.fake.served.length).toBe(served);
    expect((await api('GET', '/api/v1/me/settings', carol)).json.hasAnthropicKey).toBe(false);
    // Another user is not held back by carol's attempts.
    expect((await api('GET', '/api/v1/me/settings', bob)).status).toBe(200);
    const audit = (await auditRows('me.credential.set')).filter((r) => r.actor === 'user:carol');
    expect(audit.map((r) => r.details.outcome)).toEqual([...Array(5).fill('rejected'), 'throttled']);
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

describe('secrets', () => {
  it('appear in no answer and nowhere in the database file', async () => {
    expect(secrets.length).toBeGreaterThan(8);
    expect(findLeaks(answers.join('\n'), secrets)).toEqual([]);
    const home = h.config.home;
    const db = await readFile(join(home, 'tollgate.db'));
    const wal = await readFile(join(home, 'tollgate.db-wal')).catch(() => Buffer.alloc(0));
    expect(findLeaks(Buffer.concat([db, wal]), secrets)).toEqual([]);
    expect(findLeaks(h.logs(), secrets)).toEqual([]);
  });
});
