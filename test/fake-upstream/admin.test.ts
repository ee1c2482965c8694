// The fake's Admin API: who may call it, Anthropic's error shape, paging, seeded keys and their status.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { partialKeyHint } from './admin.js';
import { type FakeUpstream, startFakeUpstream } from './index.js';

const ADMIN = 'sk-ant-admin01-test-root';
const KEY = 'sk-ant-api03-test-alice-0123456789abcdefghijklmnop';

let fake: FakeUpstream;
beforeAll(async () => {
  fake = await startFakeUpstream();
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());

async function call(method: string, path: string, key: string, body?: unknown) {
  const response = await fetch(`${fake.url}${path}`, {
    method,
    headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const message = { model: 'claude-sonnet-4-6', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] };

describe('fake Admin API', () => {
  it('answers admin keys, refuses API keys (403) and unknown keys (401) in Anthropic error shape', async () => {
    expect((await call('GET', '/v1/organizations/workspaces', ADMIN)).status).toBe(200);
    const wrong = await call('GET', '/v1/organizations/workspaces', KEY);
    expect(wrong.status).toBe(403);
    expect(wrong.body).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
    const unknown = await call('GET', '/v1/organizations/api_keys', 'sk-ant-admin01-nope');
    expect(unknown.status).toBe(401);
    expect(unknown.body).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
  });

  it('refuses admin keys on Messages (an API key is the control)', async () => {
    expect((await call('POST', '/v1/messages', ADMIN, message)).status).toBe(401);
    expect((await call('POST', '/v1/messages', KEY, message)).status).toBe(200);
  });

  it('pages workspaces with limit and after_id', async () => {
    for (const name of ['a', 'b', 'c']) {
      expect((await call('POST', '/v1/organizations/workspaces', ADMIN, { name })).status).toBe(200);
    }
    const first = await call('GET', '/v1/organizations/workspaces?limit=2', ADMIN);
    expect(first.body).toMatchObject({ has_more: true });
    const ids = fake.admin.workspaces().map((w) => w.id);
    expect(first.body.first_id).toBe(ids[0]);
    expect(first.body.last_id).toBe(ids[1]);
    const second = await call('GET', `/v1/organizations/workspaces?limit=2&after_id=${ids[1]}`, ADMIN);
    expect(second.body).toMatchObject({ has_more: false, first_id: ids[2], last_id: ids[2] });
    expect((await call('GET', '/v1/organizations/workspaces?limit=0', ADMIN)).status).toBe(400);
    expect((await call('POST', '/v1/organizations/workspaces', ADMIN, { name: 'x'.repeat(41) })).status).toBe(
      400,
    );
  });

  it('lists seeded keys with Anthropic hints, sets their status, and Messages refuse an inactive key', async () => {
    const key = fake.admin.addApiKey({ secret: KEY, name: 'alice' });
    expect(key.partial_key_hint).toBe(partialKeyHint(KEY));
    expect(partialKeyHint('sk-ant-api03-R2D0000000000000000000000000igAA')).toBe('sk-ant-api03-R2D...igAA');
    const listed = await call('GET', '/v1/organizations/api_keys?status=active', ADMIN);
    expect(listed.body.data).toEqual([key]);

    const updated = await call('POST', `/v1/organizations/api_keys/${key.id}`, ADMIN, { status: 'inactive' });
    expect(updated.body).toMatchObject({ id: key.id, status: 'inactive' });
    expect((await call('POST', '/v1/messages', KEY, message)).status).toBe(401);
    expect((await call('GET', '/v1/organizations/api_keys?status=active', ADMIN)).body.data).toEqual([]);

    await call('POST', `/v1/organizations/api_keys/${key.id}`, ADMIN, { status: 'active' });
    expect((await call('POST', '/v1/messages', KEY, message)).status).toBe(200);
  });

  it('answers 403 permission_error to every admin call while the org has no access', async () => {
    fake.admin.setNoAccess(true);
    const refused = await call('GET', '/v1/organizations/me', ADMIN);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ error: { type: 'permission_error' } });
    fake.admin.setNoAccess(false);
    expect((await call('GET', '/v1/organizations/me', ADMIN)).status).toBe(200);
  });
});
