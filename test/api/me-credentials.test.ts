// The self-service credential endpoints: validated against the fake Anthropic, GitHub and Linear APIs,
// stored and then used, replaced, removed, throttled and audited — and no secret in any answer, the
// logs or the database file.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Harness } from '../helpers/gateway.js';
import { canaryAnthropicKey, findLeaks } from '../helpers/secrets.js';
import { type MeFixture, SELF, SMALL, startMeFixture } from './me-fixture.js';

/** Every secret sent (good and bad), none of which may be stored or echoed in the clear. */
const secrets: string[] = [];
let f: MeFixture;
let h: Harness;
const api: MeFixture['api'] = (...args) => f.api(...args);
const auditRows: MeFixture['auditRows'] = (action) => f.auditRows(action);
let alice: string;
let bob: string;

beforeAll(async () => {
  f = await startMeFixture();
  ({ h, alice, bob } = f);
}, 30_000);

afterAll(async () => {
  await f?.close();
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
    secrets.push(badGitHub, badLinear, f.providers.goodGitHubToken, f.providers.goodLinearKey);

    const ghBad = await api('PUT', '/api/v1/me/credentials/github', dave, { secret: badGitHub });
    expect([ghBad.status, ghBad.json.error.code]).toEqual([400, 'credential_rejected']);
    expect(f.providers.github.at(-1)).toMatchObject({
      method: 'GET',
      path: '/user',
      authorization: `Bearer ${badGitHub}`,
    });
    const linBad = await api('PUT', '/api/v1/me/credentials/linear', dave, { secret: badLinear });
    expect([linBad.status, linBad.json.error.code]).toEqual([400, 'credential_rejected']);
    expect(f.providers.linear.at(-1)).toMatchObject({
      method: 'POST',
      path: '/graphql',
      authorization: badLinear,
    });
    expect((await api('GET', '/api/v1/me/settings', dave)).json).toMatchObject({
      hasGitHubToken: false,
      hasLinearKey: false,
    });

    const gh = await api('PUT', '/api/v1/me/credentials/github', dave, {
      secret: f.providers.goodGitHubToken,
    });
    expect(gh.status).toBe(200);
    expect(gh.json.hasGitHubToken).toBe(true);
    const lin = await api('PUT', '/api/v1/me/credentials/linear', dave, {
      secret: f.providers.goodLinearKey,
    });
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
      secret: f.providers.goodGitHubToken,
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
    // A second refused attempt in the window: refused too, but audited once per window, not per attempt.
    expect((await api('PUT', '/api/v1/me/credentials/anthropic', carol, { secret: good })).status).toBe(429);
    const audit = (await auditRows('me.credential.set')).filter((r) => r.actor === 'user:carol');
    expect(audit.map((r) => r.details.outcome)).toEqual([...Array(5).fill('rejected'), 'throttled']);
  });
});

describe('secrets', () => {
  it('appear in no answer and nowhere in the database file', async () => {
    expect(secrets.length).toBeGreaterThan(8);
    expect(findLeaks(f.answers.join('\n'), secrets)).toEqual([]);
    const home = h.config.home;
    const db = await readFile(join(home, 'tollgate.db'));
    const wal = await readFile(join(home, 'tollgate.db-wal')).catch(() => Buffer.alloc(0));
    expect(findLeaks(Buffer.concat([db, wal]), secrets)).toEqual([]);
    expect(findLeaks(h.logs(), secrets)).toEqual([]);
  });
});
