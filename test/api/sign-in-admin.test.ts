// The admin side of sign-in over HTTP: login links (accepted in a browser, single-use, voided by a newer
// one, refused for services), disable/enable (keys revoked, sessions ended, audited), a person's
// sessions listed and ended, and key ceilings on the user view (a ceiling profile cannot be removed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SessionClient, signIn } from '../helpers/browser-session.js';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
  await h.orgCredential();
});
afterAll(() => h.close());

async function addUser(name: string, role = 'member'): Promise<void> {
  const r = await h.api('POST', '/admin/v1/users', { body: { name, role } });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
}

/** A login link issued over the API, opened in a browser with a password: the session it opens. */
async function signInByLink(name: string, password = 'correct horse battery'): Promise<SessionClient> {
  const link = await h.api('POST', `/admin/v1/users/${name}/login-link`);
  expect(link.status, JSON.stringify(link.json)).toBe(201);
  const path = new URL(link.json.url).pathname;
  return signIn(h.url, path, { password });
}

async function auditOf(action: string): Promise<ApiJson[]> {
  const r = await h.api('GET', `/admin/v1/audit?action=${action}`);
  expect(r.status).toBe(200);
  return r.json.items;
}

describe('login links', () => {
  it('issues a single-use link that signs the person in; a newer link voids the older', async () => {
    await addUser('lena');
    const first = await h.api('POST', '/admin/v1/users/lena/login-link');
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ user: 'lena', url: expect.stringMatching(/\/invite\/tgi_\w+$/) });
    expect(Date.parse(first.json.expires_at) - Date.now()).toBeGreaterThan(23 * 3_600_000);
    // The link's token is never in the audit entry.
    const entries = await auditOf('user.login_link');
    expect(JSON.stringify(entries)).not.toContain(first.json.url.split('/invite/')[1]);

    const second = await h.api('POST', '/admin/v1/users/lena/login-link');
    expect(second.status).toBe(201);
    await expect(
      signIn(h.url, new URL(first.json.url).pathname, { password: 'correct horse battery' }),
    ).rejects.toThrow(/404/);
    const session = await signIn(h.url, new URL(second.json.url).pathname, {
      password: 'correct horse battery',
    });
    expect((await session.call('GET', '/api/v1/me')).json).toMatchObject({ name: 'lena' });
    await expect(
      signIn(h.url, new URL(second.json.url).pathname, { password: 'another password!' }),
    ).rejects.toThrow(/404/);
    expect((await h.api('GET', '/admin/v1/users/lena')).json).toMatchObject({
      password_set: true,
      sso: false,
      disabled_at: null,
      key_ceiling: null,
    });
  });

  it('refuses a service user, beside a person who gets one', async () => {
    await addUser('robot', 'service');
    const refused = await h.api('POST', '/admin/v1/users/robot/login-link');
    expect(refused.status).toBe(400);
    expect(refused.json.error.message).toMatch(/service user/);
    await addUser('pia');
    expect((await h.api('POST', '/admin/v1/users/pia/login-link')).status).toBe(201);
    expect((await h.api('POST', '/admin/v1/users/nobody/login-link')).status).toBe(404);
  });
});

describe('disable and enable', () => {
  it('disable revokes keys, ends sessions, voids links and is audited; enable lets them back', async () => {
    await addUser('dora');
    const session = await signInByLink('dora');
    const key = await h.key({ user: 'dora' });
    expect((await h.client(key).messages.create(hello)).id).toBeTruthy();
    const pending = await h.api('POST', '/admin/v1/users/dora/login-link');

    const disabled = await h.api('POST', '/admin/v1/users/dora/disable', {
      body: { reason: 'left the team' },
    });
    expect(disabled.status, JSON.stringify(disabled.json)).toBe(200);
    expect(disabled.json).toMatchObject({ name: 'dora', active_keys: 0, password_set: true });
    expect(disabled.json.disabled_at).toMatch(/^\d{4}-/);
    expect((await session.call('GET', '/api/v1/me')).status).toBe(401);
    await h.refresh();
    await expect(h.client(key, { maxRetries: 0 }).messages.create(hello)).rejects.toThrow();
    await expect(
      signIn(h.url, new URL(pending.json.url).pathname, { password: 'correct horse battery' }),
    ).rejects.toThrow(/404/);
    await expect(
      signIn(h.url, '/auth/login', { login: 'dora', password: 'correct horse battery' }),
    ).rejects.toThrow();
    const [entry] = (await auditOf('user.disable')).filter((e: ApiJson) => e.target_id === disabled.json.id);
    expect(entry.details).toMatchObject({ reason: 'left the team', revoked_keys: 1, ended_sessions: 1 });

    const enabled = await h.api('POST', '/admin/v1/users/dora/enable');
    expect(enabled.status).toBe(200);
    expect(enabled.json.disabled_at).toBeNull();
    // Back in with the same password; the revoked key stays revoked.
    const again = await signIn(h.url, '/auth/login', { login: 'dora', password: 'correct horse battery' });
    expect((await again.call('GET', '/api/v1/me')).status).toBe(200);
    await expect(h.client(key, { maxRetries: 0 }).messages.create(hello)).rejects.toThrow();
    expect((await auditOf('user.enable')).some((e: ApiJson) => e.target_id === enabled.json.id)).toBe(true);
  });

  it('refuses a reason longer than 200 characters and unknown fields', async () => {
    await addUser('ed');
    const long = await h.api('POST', '/admin/v1/users/ed/disable', { body: { reason: 'x'.repeat(201) } });
    expect(long.status).toBe(400);
    const unknown = await h.api('POST', '/admin/v1/users/ed/disable', { body: { why: 'x' } });
    expect(unknown.status).toBe(400);
    expect((await h.api('GET', '/admin/v1/users/ed')).json.disabled_at).toBeNull();
    expect((await h.api('POST', '/admin/v1/users/ed/disable', { body: {} })).status).toBe(200);
  });
});

describe("a person's sessions", () => {
  it('lists live sessions without their secrets, and ends them all', async () => {
    await addUser('sam');
    const one = await signInByLink('sam');
    const two = await signIn(h.url, '/auth/login', { login: 'sam', password: 'correct horse battery' });
    const list = await h.api('GET', '/admin/v1/users/sam/sessions');
    expect(list.status).toBe(200);
    expect(list.json.items).toHaveLength(2);
    expect(Object.keys(list.json.items[0]).sort()).toEqual(
      ['created_at', 'expires_at', 'id', 'ip', 'last_seen_at', 'method', 'user_agent'].sort(),
    );
    expect(list.json.items.map((s: ApiJson) => s.method).sort()).toEqual(['invite', 'password']);
    const text = JSON.stringify(list.json);
    expect(text).not.toContain(one.cookie.split('=')[1]);
    expect(text).not.toMatch(/tgs_/);
    const paged = await h.api('GET', '/admin/v1/users/sam/sessions?limit=1');
    expect(paged.json.items).toHaveLength(1);
    expect(paged.json.next_cursor).toEqual(expect.any(String));

    // Another person's sessions are untouched by ending Sam's.
    await addUser('tess');
    const other = await signInByLink('tess');
    const ended = await h.api('DELETE', '/admin/v1/users/sam/sessions');
    expect(ended.status).toBe(200);
    expect(ended.json).toEqual({ user: 'sam', ended_sessions: 2 });
    expect((await one.call('GET', '/api/v1/me')).status).toBe(401);
    expect((await two.call('GET', '/api/v1/me')).status).toBe(401);
    expect((await other.call('GET', '/api/v1/me')).status).toBe(200);
    expect((await h.api('GET', '/admin/v1/users/sam/sessions')).json.items).toEqual([]);
    const entries = (await auditOf('session.end_all')).filter((e: ApiJson) => e.details.ended_sessions === 2);
    expect(entries.length).toBeGreaterThan(0);
    expect((await h.api('GET', '/admin/v1/users/nobody/sessions')).status).toBe(404);
  });
});

describe('key ceiling', () => {
  it('sets, shows and clears a ceiling; an unknown profile is 404 naming it', async () => {
    await addUser('kim');
    expect(
      (await h.api('POST', '/admin/v1/profiles', { body: { name: 'narrow', tools: ['Read'] } })).status,
    ).toBe(201);
    const set = await h.api('PATCH', '/admin/v1/users/kim', { body: { key_ceiling: 'narrow' } });
    expect(set.status).toBe(200);
    expect(set.json.key_ceiling).toBe('narrow');
    const listed = await h.api('GET', '/admin/v1/users?name_prefix=kim');
    expect(listed.json.items[0].key_ceiling).toBe('narrow');
    const unknown = await h.api('PATCH', '/admin/v1/users/kim', { body: { key_ceiling: 'no-such-profile' } });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.message).toContain('no-such-profile');

    // The profile bounding Kim's keys cannot be removed while it does; once cleared, it can.
    const refused = await h.api('DELETE', '/admin/v1/profiles/narrow');
    expect(refused.status).toBe(409);
    expect(refused.json.error.message).toContain('kim');
    const cleared = await h.api('PATCH', '/admin/v1/users/kim', { body: { key_ceiling: null } });
    expect(cleared.json.key_ceiling).toBeNull();
    expect((await h.api('DELETE', '/admin/v1/profiles/narrow')).status).toBe(200);
  });
});

const hello = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};
