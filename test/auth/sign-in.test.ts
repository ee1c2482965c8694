// Sign-in end to end over HTTP: the admin token, invite links and passwords, sessions on both APIs,
// CSRF, logout, and the cookie's attributes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signIn } from '../helpers/browser-session.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

let h: Harness;
const admin = { actor: 'test-admin' };

beforeAll(async () => {
  h = await startHarness();
  await h.services.users.add(admin, { name: 'ada', email: 'ada@example.com', role: 'admin' });
  await h.services.users.add(admin, { name: 'bob', email: 'bob@example.com', role: 'member' });
});
afterAll(() => h.close());

async function inviteAndSetPassword(name: string, password: string) {
  const invite = await h.services.invites.issue(admin, name);
  const token = invite.url.split('/invite/')[1] ?? '';
  return signIn(h.url, `/invite/${token}`, { password });
}

describe('admin token → admin session', () => {
  it('opens a session that can read and, with its CSRF token, change the admin API', async () => {
    const s = await signIn(h.url, '/auth/login', { token: h.adminToken });
    expect(s.json).toMatchObject({ kind: 'installation', method: 'admin-token', role: 'admin' });
    expect((await s.call('GET', '/admin/v1/teams')).status).toBe(200);
    const refused = await s.call('POST', '/admin/v1/teams', { body: { name: 'no-csrf' }, csrf: false });
    expect(refused.status).toBe(403);
    const wrong = await s.call('POST', '/admin/v1/teams', {
      body: { name: 'bad-csrf' },
      csrf: 'x'.repeat(43),
    });
    expect(wrong.status).toBe(403);
    const ok = await s.call('POST', '/admin/v1/teams', { body: { name: 'with-csrf' } });
    expect(ok.status).toBe(201);
  });

  it('refuses a wrong token', async () => {
    await expect(signIn(h.url, '/auth/login', { token: 'tga_nope' })).rejects.toThrow(/401/);
  });
});

describe('invite link → password → session', () => {
  it('sets the password, signs in, and the link is single-use', async () => {
    const invite = await h.services.invites.issue(admin, 'bob');
    expect(invite.url).toMatch(/\/invite\/tgi_[0-9A-Za-z]{49}$/);
    const token = invite.url.split('/invite/')[1] ?? '';
    const info = await fetch(`${h.url}/auth/invite/${token}`);
    expect(await info.json()).toMatchObject({ user: 'bob' });
    const s = await signIn(h.url, `/invite/${token}`, { password: 'correct horse battery' });
    expect(s.json).toMatchObject({ method: 'invite', user: { name: 'bob', role: 'member' } });
    const me = await s.call('GET', '/api/v1/me');
    expect(me.status).toBe(200);
    expect(me.json).toMatchObject({ name: 'bob' });
    await expect(signIn(h.url, `/invite/${token}`, { password: 'another password!' })).rejects.toThrow(/404/);
    // Password sign-in thereafter, by name or by email.
    await signIn(h.url, '/auth/login', { login: 'bob', password: 'correct horse battery' });
    await signIn(h.url, '/auth/login', { login: 'BOB@example.com', password: 'correct horse battery' });
  });

  it('a member session is refused on the admin API; an admin session is let in', async () => {
    const bob = await signIn(h.url, '/auth/login', { login: 'bob', password: 'correct horse battery' });
    expect((await bob.call('GET', '/admin/v1/teams')).status).toBe(403);
    const ada = await inviteAndSetPassword('ada', 'ada lovelace engine');
    expect((await ada.call('GET', '/admin/v1/teams')).status).toBe(200);
    expect((await ada.call('GET', '/api/v1/me')).status).toBe(200);
  });

  it('refuses a short password and keeps the link usable', async () => {
    const invite = await h.services.invites.issue(admin, 'ada');
    const token = invite.url.split('/invite/')[1] ?? '';
    await expect(signIn(h.url, `/invite/${token}`, { password: 'short' })).rejects.toThrow(/400/);
    await signIn(h.url, `/invite/${token}`, { password: 'ada lovelace engine' });
  });
});

describe('logout', () => {
  it('ends the session; logout everywhere ends the others', async () => {
    const a = await signIn(h.url, '/auth/login', { login: 'bob', password: 'correct horse battery' });
    const b = await signIn(h.url, '/auth/login', { login: 'bob', password: 'correct horse battery' });
    expect((await a.call('POST', '/auth/logout', { csrf: false })).status).toBe(403);
    expect((await a.call('POST', '/auth/logout')).status).toBe(200);
    expect((await a.call('GET', '/api/v1/me')).status).toBe(401);
    expect((await b.call('GET', '/api/v1/me')).status).toBe(200);
    const c = await signIn(h.url, '/auth/login', { login: 'bob', password: 'correct horse battery' });
    expect((await c.call('POST', '/auth/logout-all')).json).toMatchObject({ signed_out: true });
    expect((await b.call('GET', '/api/v1/me')).status).toBe(401);
  });
});

describe('the cookie', () => {
  it('is HttpOnly, SameSite=Lax, for the whole host, not Secure on plain HTTP', async () => {
    const s = await signIn(h.url, '/auth/login', { token: h.adminToken });
    expect(s.setCookie).toMatch(
      /^tollgate_session=tgs_[0-9A-Za-z]{49}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/,
    );
  });
});

describe('the pages (no script: plain forms)', () => {
  const form = (fields: Record<string, string>, headers: Record<string, string> = {}) => ({
    method: 'POST',
    redirect: 'manual' as const,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });

  it('an invite link opens the page; posting its form signs in and lands on the signed-in page', async () => {
    const invite = await h.services.invites.issue(admin, 'bob');
    const path = new URL(invite.url).pathname;
    const token = path.split('/invite/')[1] ?? '';
    const page = await fetch(invite.url.replace(h.config.server.public_url, h.url));
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    // The page is the dashboard shell: it carries no data (not the token); the lookup names the person.
    expect(await page.text()).not.toContain(token);
    expect(await (await fetch(`${h.url}/auth/invite/${token}`)).json()).toMatchObject({ user: 'bob' });
    const short = await fetch(`${h.url}${path}`, form({ password: 'short' }));
    expect(short.status).toBe(400);
    expect(await short.text()).toContain('at least 12 characters');
    const posted = await fetch(`${h.url}${path}`, form({ password: 'correct horse battery' }));
    expect(posted.status).toBe(303);
    expect(posted.headers.get('location')).toBe('/');
    const cookie = (posted.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    // The signed-in page: '/' sends a member on to their settings, which the session opens.
    const home = await fetch(`${h.url}/`, { headers: { cookie }, redirect: 'manual' });
    expect(home.headers.get('location')).toBe('/settings');
    expect((await fetch(`${h.url}/settings`, { headers: { cookie }, redirect: 'manual' })).status).toBe(200);
    const session = await fetch(`${h.url}/auth/session`, { headers: { cookie } });
    const who = (await session.json()) as { user: { name: string; role: string }; csrf_token: string };
    expect(who.user).toMatchObject({ name: 'bob', role: 'member' });
    // Sign out with the form: the CSRF field is required.
    expect((await fetch(`${h.url}/auth/logout`, form({}, { cookie }))).status).toBe(403);
    const out = await fetch(`${h.url}/auth/logout`, form({ csrf_token: who.csrf_token }, { cookie }));
    expect(out.status).toBe(303);
    expect(
      (await fetch(`${h.url}/`, { headers: { cookie }, redirect: 'manual' })).headers.get('location'),
    ).toBe('/login');
    expect((await fetch(`${h.url}/auth/session`, { headers: { cookie } })).status).toBe(401);
  });

  it('the login form signs in; a wrong password shows the same page with the reason', async () => {
    const page = await fetch(`${h.url}/login`);
    expect(page.status).toBe(200);
    expect(await (await fetch(`${h.url}/auth/methods`)).json()).toMatchObject({ admin_token: true });
    const wrong = await fetch(`${h.url}/auth/login`, form({ login: 'bob', password: 'not the password' }));
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const text = await wrong.text();
    expect(text).toContain('wrong name or password');
    expect(text).toContain('name="token"');
    const ok = await fetch(`${h.url}/auth/login`, form({ token: h.adminToken }));
    expect(ok.status).toBe(303);
    expect(ok.headers.get('set-cookie')).toMatch(/^tollgate_session=tgs_/);
  });

  it('a sign-in form posted from another site is refused (no login CSRF)', async () => {
    const refused = await fetch(
      `${h.url}/auth/login`,
      form({ token: h.adminToken }, { origin: 'https://evil.example' }),
    );
    expect(refused.status).toBe(403);
    expect(refused.headers.get('set-cookie')).toBeNull();
    const same = await fetch(`${h.url}/auth/login`, form({ token: h.adminToken }, { origin: h.url }));
    expect(same.status).toBe(303);
  });
});
