// Canary credentials, gateway keys and admin tokens sent through the admin and self-service APIs never
// appear — raw, base64 at every alignment, hex or URL-encoded — in any later API answer, any log line,
// any audit row or the database file and its WAL. The one answer that hands a key or token out is the
// only place it is ever shown.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeProviders, startFakeProviders } from '../fake-providers/index.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey, findLeaks } from '../helpers/secrets.js';

describe('canaries through the admin and self-service APIs', () => {
  let h: Harness;
  let providers: FakeProviders;
  const answers: string[] = [];
  const canaries: string[] = [];

  beforeAll(async () => {
    providers = await startFakeProviders();
    h = await startHarness({ env: providers.env });
  });

  afterAll(async () => {
    await h?.close();
    await providers?.close();
  });

  /** Calls the API and keeps the answer (body and headers) for the search, unless it is a one-time hand-out. */
  async function call(
    method: string,
    path: string,
    o: { token?: string; body?: unknown; handOut?: boolean } = {},
  ) {
    const answer = await h.api(method, path, o);
    if (!o.handOut) answers.push(JSON.stringify(answer.json), JSON.stringify([...answer.headers.entries()]));
    return answer;
  }

  it('finds no canary anywhere after driving every surface with them', async () => {
    const orgKey = canaryAnthropicKey();
    const rotatedKey = canaryAnthropicKey();
    const rejected = `${canaryAnthropicKey()}`;
    const userKey = canaryAnthropicKey();
    canaries.push(orgKey, rotatedKey, rejected, userKey, h.adminToken, providers.goodGitHubToken);

    // Credentials: added, rotated, a rejected one, smuggled in unknown fields and in names.
    expect(
      (
        await call('POST', '/admin/v1/credentials', {
          body: { name: 'org', provider: 'anthropic', secret: orgKey },
        })
      ).status,
    ).toBe(201);
    expect(
      (await call('POST', '/admin/v1/credentials/org/rotate', { body: { secret: rotatedKey, grace: '1h' } }))
        .status,
    ).toBe(200);
    h.fake.enqueueFault({ kind: 'status', status: 401 });
    expect(
      (
        await call('POST', '/admin/v1/credentials', {
          body: { name: 'bad', provider: 'anthropic', secret: rejected },
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await call('POST', '/admin/v1/credentials', {
          body: { name: 'x', provider: 'anthropic', secret: orgKey, extra: orgKey },
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await call('POST', '/admin/v1/credentials', {
          body: { name: orgKey, provider: 'anthropic', secret: orgKey },
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await call('POST', '/admin/v1/credentials', {
          body: { name: 'shape', provider: 'anthropic-admin', secret: orgKey },
        })
      ).status,
    ).toBe(400);

    // Users, a self-service key and a personal admin token: handed out once each.
    expect((await call('POST', '/admin/v1/users', { body: { name: 'alice', team: null } })).status).toBe(201);
    expect((await call('POST', '/admin/v1/users', { body: { name: 'ops', role: 'admin' } })).status).toBe(
      201,
    );
    const issued = await call('POST', '/admin/v1/keys', {
      body: { user: 'alice', scopes: ['inference', 'self-service'] },
      handOut: true,
    });
    const key: string = issued.json.key;
    const rotated = await call('POST', `/admin/v1/keys/${issued.json.id}/rotate`, {
      body: { grace: '1h' },
      handOut: true,
    });
    const newKey: string = rotated.json.key;
    const personal = await call('POST', '/admin/v1/admin-tokens', { body: { user: 'ops' }, handOut: true });
    const token: string = personal.json.token;
    canaries.push(key, newKey, token);

    // The self-service API with the key: own Anthropic key and GitHub token stored, bad ones refused.
    expect(
      (await call('PUT', '/api/v1/me/credentials/anthropic', { token: newKey, body: { secret: userKey } }))
        .status,
    ).toBe(200);
    expect(
      (
        await call('PUT', '/api/v1/me/credentials/github', {
          token: newKey,
          body: { secret: providers.goodGitHubToken },
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await call('PUT', '/api/v1/me/credentials/github', {
          token: newKey,
          body: { secret: 'ghp_wrong', role: key },
        })
      ).status,
    ).toBe(400);
    for (const path of ['/api/v1/me', '/api/v1/me/settings', '/api/v1/me/keys', '/api/v1/me/usage'])
      expect((await call('GET', path, { token: key })).status).toBe(200);

    // The gateway with both keys (the old one is in its grace period).
    for (const k of [key, newKey]) {
      const answer = await h.client(k).messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 5,
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(answer.type).toBe('message');
    }

    // Every admin read, with the personal token and the installation token, and keys in query strings.
    for (const t of [token, h.adminToken]) {
      for (const path of [
        '/admin/v1/whoami',
        '/admin/v1/credentials',
        '/admin/v1/credentials/org',
        '/admin/v1/credentials/org.previous',
        '/admin/v1/keys',
        `/admin/v1/keys/${issued.json.id}`,
        '/admin/v1/users',
        '/admin/v1/users/alice',
        '/admin/v1/admin-tokens',
        '/admin/v1/budgets',
        '/admin/v1/usage?by=key',
        '/admin/v1/audit?limit=500',
        `/admin/v1/users?name_prefix=${encodeURIComponent(key)}`,
        `/admin/v1/keys/${encodeURIComponent(newKey)}`,
      ])
        await call('GET', path, { token: t });
      await call('POST', '/admin/v1/audit/verify', { token: t, body: {} });
    }
    // Failing authentication with every canary as the token: one refusal each, nothing echoed.
    for (const secret of [key, newKey, orgKey, userKey])
      expect((await call('GET', '/admin/v1/whoami', { token: secret })).status).toBe(401);
    for (const secret of [orgKey, userKey, token])
      expect((await call('GET', '/api/v1/me', { token: secret })).status).toBe(401);
    expect((await call('DELETE', `/admin/v1/admin-tokens/${personal.json.id}`)).status).toBe(200);
    expect((await call('GET', '/admin/v1/whoami', { token })).status).toBe(401);

    // Positive control: the search finds a canary where one is (the hand-out answers).
    expect(findLeaks(JSON.stringify(issued.json), [key])).not.toEqual([]);

    const audit = await h.installation.db.kysely.selectFrom('audit_log').selectAll().execute();
    expect(audit.length).toBeGreaterThan(10);
    const dbFile = join(h.config.home, 'tollgate.db');
    const haystacks: Array<[string, string | Buffer]> = [
      ['API answers', answers.join('\n')],
      ['logs', h.logs()],
      ['audit rows', JSON.stringify(audit)],
      ['database', await readFile(dbFile)],
      ['WAL', await readFile(`${dbFile}-wal`).catch(() => Buffer.alloc(0))],
    ];
    for (const [where, haystack] of haystacks) expect(findLeaks(haystack, canaries), where).toEqual([]);
    expect(answers.length).toBeGreaterThan(60);
  }, 60_000);
});
