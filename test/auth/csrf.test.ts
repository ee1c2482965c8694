// CSRF protection of cookie sessions: every state-changing operation of both APIs, and the session's own
// routes, refuse a live session without its CSRF token and accept the very same call with it; a page of
// another origin is refused even with the token; bearer calls need none. And the cookie's attributes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_OPS } from '../../src/api/admin/index.js';
import { ME_OPS } from '../../src/api/me/index.js';
import type { Operation } from '../../src/api/operation.js';
import { ADMIN_FIXTURES, type Call, ME_FIXTURES, setUpWorld, type World } from '../api/authz-fixtures.js';
import { type SessionClient, signIn } from '../helpers/browser-session.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

let h: Harness;
let w: World;
let member: SessionClient;
let admin: SessionClient;

async function throughInvite(name: string, password: string): Promise<SessionClient> {
  const invite = await h.services.invites.issue(h.admin, name);
  return signIn(h.url, `/invite/${invite.url.split('/invite/')[1] ?? ''}`, { password });
}

beforeAll(async () => {
  h = await startHarness();
  w = await setUpWorld(h);
  await h.services.users.add(h.admin, { name: 'ada', role: 'admin' });
  await h.services.users.add(h.admin, { name: 'carol', role: 'member' });
  member = await throughInvite(w.a.name, 'csrf member password');
  admin = await throughInvite('ada', 'csrf admin password');
}, 60_000);
afterAll(() => h?.close());

function expand(op: Operation, call: Call): string {
  const path = op.path.replace(/\{([A-Za-z_]+)\}/g, (_m, name: string) =>
    encodeURIComponent(call.params?.[name] ?? 'missing'),
  );
  const query = new URLSearchParams(call.query ?? {}).toString();
  return query ? `${path}?${query}` : path;
}

async function callFor(op: Operation): Promise<Call> {
  const fixture = ADMIN_FIXTURES[op.id] ?? ME_FIXTURES[op.id]?.own;
  if (!fixture) throw new Error(`no fixture for ${op.id}`);
  return fixture(w);
}

const changing = [...ADMIN_OPS, ...ME_OPS].filter((op) => op.method !== 'GET');

describe('every state-changing operation from a cookie session', () => {
  it('covers every operation that is not a GET', () => {
    expect(changing.length).toBeGreaterThan(25);
    expect(changing.some((op) => op.path.startsWith('/api/v1/me'))).toBe(true);
  });

  it.each(changing.map((op) => [`${op.method} ${op.path}`, op] as const))(
    '%s: refused without the CSRF token, done with it',
    async (_name, op) => {
      const session = op.path.startsWith('/admin/') ? admin : member;
      const call = await callFor(op);
      const path = expand(op, call);
      const body = op.body ? { body: call.body ?? {} } : {};
      const refused = await session.call(op.method, path, { ...body, csrf: false });
      expect(refused.status).toBe(403);
      expect(refused.json.error.code).toBe('forbidden');
      expect(refused.json.error.message).toMatch(/CSRF/);
      const wrong = await session.call(op.method, path, {
        ...body,
        csrf: admin.csrf === session.csrf ? member.csrf : admin.csrf,
      });
      expect(wrong.status, "another session's token").toBe(403);
      // The positive control: the same call, untouched by the refusals, now with the token.
      const done = await session.call(op.method, path, body);
      const want = op.id === 'me.keys.issue' ? 201 : op.status;
      expect(done.status, JSON.stringify(done.json).slice(0, 200)).toBe(want);
    },
  );
});

describe("the session's own routes", () => {
  it('password change, logout everywhere and logout each need the CSRF token', async () => {
    const carol = await throughInvite('carol', 'carol first password');
    const change = { current_password: 'carol first password', new_password: 'carol second password' };
    expect((await carol.call('POST', '/auth/password', { body: change, csrf: false })).status).toBe(403);
    // The refused change changed nothing: the old password still signs in.
    await signIn(h.url, '/auth/login', { login: 'carol', password: 'carol first password' });
    const changed = await carol.call('POST', '/auth/password', { body: change });
    expect(changed.status).toBe(200);
    expect(changed.json).toMatchObject({ changed: true });

    expect((await carol.call('POST', '/auth/logout-all', { csrf: false })).status).toBe(403);
    expect((await carol.call('GET', '/api/v1/me')).status).toBe(200);
    expect((await carol.call('POST', '/auth/logout-all')).status).toBe(200);
    expect((await carol.call('GET', '/api/v1/me')).status).toBe(401);

    const again = await signIn(h.url, '/auth/login', { login: 'carol', password: 'carol second password' });
    expect((await again.call('POST', '/auth/logout', { csrf: false })).status).toBe(403);
    expect((await again.call('GET', '/api/v1/me')).status).toBe(200);
    expect((await again.call('POST', '/auth/logout')).status).toBe(200);
    expect((await again.call('GET', '/api/v1/me')).status).toBe(401);
  });

  it("the sign-out form's csrf_token field counts as the token; a wrong one does not", async () => {
    const s = await signIn(h.url, '/auth/login', { login: 'carol', password: 'carol second password' });
    const post = (csrf: string) =>
      fetch(`${h.url}/auth/logout`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: s.cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf_token: csrf }).toString(),
      });
    expect((await post('x'.repeat(43))).status).toBe(403);
    expect((await s.call('GET', '/api/v1/me')).status).toBe(200);
    expect((await post(s.csrf)).status).toBe(303);
    expect((await s.call('GET', '/api/v1/me')).status).toBe(401);
  });
});

describe('another origin', () => {
  const cases = [
    ['Origin: https://evil.example', { origin: 'https://evil.example' }],
    ['sec-fetch-site: cross-site', { 'sec-fetch-site': 'cross-site' }],
  ] as const;

  it.each(cases)(
    '%s is refused even with the CSRF token; the same call from this origin works',
    async (_n, headers) => {
      const evil = await admin.call('POST', '/admin/v1/teams', { body: { name: 'from-evil' }, headers });
      expect(evil.status).toBe(403);
      expect(evil.json.error.code).toBe('forbidden');
      const self = await member.call('PATCH', '/api/v1/me/settings', {
        body: { preferredModel: 'claude-haiku-4-5' },
        headers,
      });
      expect(self.status).toBe(403);
      // A sign-in form posted from another site is refused too (login CSRF).
      const login = await fetch(`${h.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ token: h.adminToken }),
      });
      expect(login.status).toBe(403);
      expect(login.headers.get('set-cookie')).toBeNull();

      // Controls: the same calls from this server's own origin, and a same-origin fetch.
      const own = { origin: h.url, 'sec-fetch-site': 'same-origin' };
      expect(
        (await admin.call('POST', '/admin/v1/teams', { body: { name: `ok-${_n.length}` }, headers: own }))
          .status,
      ).toBe(201);
      expect(
        (
          await member.call('PATCH', '/api/v1/me/settings', {
            body: { preferredModel: 'claude-haiku-4-5' },
            headers: own,
          })
        ).status,
      ).toBe(200);
      await signIn(h.url, '/auth/login', { token: h.adminToken });
    },
  );
});

describe('bearer calls', () => {
  it('need no CSRF token (a page of another site cannot set the Authorization header)', async () => {
    const team = await h.api('POST', '/admin/v1/teams', { body: { name: 'bearer-team' } });
    expect(team.status).toBe(201);
    const settings = await h.api('PATCH', '/api/v1/me/settings', {
      token: w.a.selfServiceKey,
      body: { preferredModel: 'claude-haiku-4-5' },
    });
    expect(settings.status).toBe(200);
    // Refusal beside them: the same admin call with the cookie and no token.
    expect(
      (await admin.call('POST', '/admin/v1/teams', { body: { name: 'cookie-team' }, csrf: false })).status,
    ).toBe(403);
  });
});

/** The attributes of a Set-Cookie header, lower-cased names. */
function attributes(setCookie: string): Map<string, string> {
  const [, ...parts] = setCookie.split(';');
  return new Map(
    parts.map((p) => {
      const [k = '', v = ''] = p.trim().split('=');
      return [k.toLowerCase(), v];
    }),
  );
}

describe('the cookie', () => {
  it('is HttpOnly, SameSite=Lax, Path=/, without Domain, not Secure on plain HTTP', async () => {
    const s = await signIn(h.url, '/auth/login', { token: h.adminToken });
    expect(s.cookie).toMatch(/^tollgate_session=tgs_/);
    const a = attributes(s.setCookie);
    expect(a.has('httponly')).toBe(true);
    expect(a.get('samesite')).toBe('Lax');
    expect(a.get('path')).toBe('/');
    expect(a.has('domain')).toBe(false);
    expect(a.has('secure')).toBe(false);
  });

  it('is __Host-tollgate_session and Secure when the public URL is HTTPS', async () => {
    const secure = await startHarness({
      env: { TOLLGATE_SERVER_PUBLIC_URL: 'https://tollgate.example.com' },
    });
    try {
      expect(secure.config.server.public_url).toBe('https://tollgate.example.com');
      const s = await signIn(secure.url, '/auth/login', { token: secure.adminToken });
      expect(s.cookie).toMatch(/^__Host-tollgate_session=tgs_[0-9A-Za-z]{49}$/);
      const a = attributes(s.setCookie);
      expect(a.has('secure')).toBe(true);
      expect(a.has('httponly')).toBe(true);
      expect(a.get('samesite')).toBe('Lax');
      expect(a.get('path')).toBe('/');
      expect(a.has('domain')).toBe(false);
      // The cookie works there under that name; the same id under the plain name opens nothing.
      expect((await s.call('GET', '/auth/session')).status).toBe(200);
      const plain = await fetch(`${secure.url}/auth/session`, {
        headers: { cookie: s.cookie.replace('__Host-', '') },
      });
      expect(plain.status).toBe(401);
      // The public origin is the only page origin allowed to change state.
      const fromPublic = await s.call('POST', '/admin/v1/teams', {
        body: { name: 'secure-team' },
        headers: { origin: 'https://tollgate.example.com' },
      });
      expect(fromPublic.status).toBe(201);
      const fromHttp = await s.call('POST', '/admin/v1/teams', {
        body: { name: 'insecure-team' },
        headers: { origin: 'http://tollgate.example.com' },
      });
      expect(fromHttp.status).toBe(403);
      const out = await s.call('POST', '/auth/logout');
      expect(out.headers.get('set-cookie')).toMatch(/^__Host-tollgate_session=; .*Max-Age=0.*; Secure$/);
    } finally {
      await secure.close();
    }
  });
});
