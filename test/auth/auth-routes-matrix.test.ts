// The sign-in routes outside the operations (the authorization matrix covers /admin/v1 and /api/v1/me):
// each tried anonymously, with a bearer credential instead of a session (admin token, self-service key —
// these routes read only the cookie), and where a route acts on a person, with another person's session;
// each refusal beside a positive control on the same route. The public routes (sign-in pages and forms,
// invite links, single sign-on start) answer everyone alike and are listed so a new route cannot slip by.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJson, type SessionClient, signIn } from '../helpers/browser-session.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

let h: Harness;
let bob: SessionClient;
let selfServiceKey: string;
const admin = { actor: 'test-admin' };
const PASSWORD = 'correct horse battery';

async function person(name: string): Promise<SessionClient> {
  await h.services.users.add(admin, { name, role: 'member' });
  const link = await h.services.invites.issue(admin, name);
  return signIn(h.url, new URL(link.url).pathname, { password: PASSWORD });
}

beforeAll(async () => {
  h = await startHarness();
  bob = await person('bob');
  selfServiceKey = (
    await h.services.keys.issue(admin, { user: 'bob', policy: { scopes: ['inference', 'self-service'] } })
  ).key;
});
afterAll(() => h.close());

/** Every route of the sign-in surface: who it is for. */
const SESSION_ROUTES = [
  ['GET', '/auth/session', 200],
  ['POST', '/auth/password', 200],
  ['POST', '/auth/logout-all', 200],
  ['POST', '/auth/logout', 200],
] as const;
const PUBLIC_ROUTES = [
  'POST /auth/login',
  'GET /auth/invite/:token',
  'GET /invite/:token',
  'POST /invite/:token',
  'GET /login',
  'GET /',
  'HEAD /',
  'HEAD /login',
  'HEAD /auth/session',
  'HEAD /auth/invite/:token',
  'HEAD /invite/:token',
  'GET /auth/methods',
  'HEAD /auth/methods',
  'GET /assets/:name',
  'HEAD /assets/:name',
];
/** Dashboard pages: the shell for a session, else a redirect (checked below, beside the controls). */
const ADMIN_PAGES = ['/', '/users', '/keys', '/credentials', '/usage', '/audit', '/anthropic'];
const MEMBER_PAGES = ['/settings'];
/** Prometheus's scrape, behind its own optional bearer (metrics.token; test/metrics/prometheus.test.ts). */
const METRICS_ROUTES = ['GET /metrics', 'HEAD /metrics'];
/** Probes, outside the sign-in surface: they answer everyone and say only whether the server is up. */
const OTHER_ROUTES = ['GET /healthz', 'HEAD /healthz', 'GET /readyz', 'HEAD /readyz', ...METRICS_ROUTES];
const PAGE_ROUTES = [...ADMIN_PAGES, ...MEMBER_PAGES].flatMap((p) => [`GET ${p}`, `HEAD ${p}`]);

function bodyFor(path: string, password = PASSWORD): unknown {
  return path === '/auth/password' ? { current_password: password, new_password: password } : undefined;
}

describe('sign-in routes', () => {
  it('every route outside the operations is either a session route below or a public one', () => {
    const auth = h.routes().filter((r) => !/^\S+ \/(admin\/v1|api\/v1|v1)(\/|$)/.test(r));
    const known = new Set([
      ...SESSION_ROUTES.map(([m, p]) => `${m} ${p}`),
      ...PUBLIC_ROUTES,
      ...PAGE_ROUTES,
      ...OTHER_ROUTES,
    ]);
    expect(auth.filter((r) => !known.has(r))).toEqual([]);
  });

  it('session routes: anonymous and bearer callers 401, beside a session that succeeds', async () => {
    const cells: string[] = [];
    for (const [method, path, ok] of SESSION_ROUTES) {
      const body = bodyFor(path);
      const plain = { ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
      const send = (headers: Record<string, string>) =>
        fetch(`${h.url}${path}`, {
          method,
          headers: { ...plain, ...headers },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      const anonymous = await send({});
      const adminToken = await send({ authorization: `Bearer ${h.adminToken}` });
      const key = await send({ 'x-api-key': selfServiceKey });
      for (const [who, answer] of [
        ['anonymous', anonymous],
        ['admin token', adminToken],
        ['self-service key', key],
      ] as const) {
        cells.push(`${method} ${path} ${who} ${answer.status}`);
        expect(answer.status, `${method} ${path} as ${who}`).toBe(401);
        expect((await readJson(answer)).error.code).toBe('unauthenticated');
      }
      // Positive control: a fresh session of bob's on the same route.
      const own = await signIn(h.url, '/auth/login', { login: 'bob', password: PASSWORD });
      const control = await own.call(method, path, body === undefined ? {} : { body });
      cells.push(`${method} ${path} session ${control.status}`);
      expect(control.status, `${method} ${path} as bob's session`).toBe(ok);
    }
    expect(cells).toHaveLength(SESSION_ROUTES.length * 4);
  });

  it("one person's session acts only on that person: logout-all and password leave another's alone", async () => {
    const carol = await person('carol');
    // A password change checks the signed-in person's own password: bob's is not carol's to change.
    const wrong = await carol.call('POST', '/auth/password', {
      body: { current_password: 'not carols password', new_password: 'bob has no say here' },
    });
    expect(wrong.status).toBe(401);
    await signIn(h.url, '/auth/login', { login: 'bob', password: PASSWORD });
    // Carol ends every session of hers; bob's stays live (control: carol's own ended).
    const live = await signIn(h.url, '/auth/login', { login: 'bob', password: PASSWORD });
    expect((await carol.call('POST', '/auth/logout-all')).status).toBe(200);
    expect((await carol.call('GET', '/auth/session')).status).toBe(401);
    expect((await live.call('GET', '/auth/session')).status).toBe(200);
    expect((await bob.call('GET', '/auth/session')).status).toBe(401); // ended by bob's own logout-all above
  });

  it('public routes answer without credentials (the controls of the sign-in pages)', async () => {
    expect((await fetch(`${h.url}/login`)).status).toBe(200);
    expect((await fetch(`${h.url}/`, { redirect: 'manual' })).status).toBe(303);
    expect((await fetch(`${h.url}/auth/invite/tgi_unknown`)).status).toBe(404);
    // The invite page is the shell for any link; the lookup it makes (above) is what refuses.
    expect((await fetch(`${h.url}/invite/tgi_unknown`)).status).toBe(200);
    const methods = await fetch(`${h.url}/auth/methods`);
    expect(methods.status).toBe(200);
    expect(await methods.json()).toEqual({ password: true, admin_token: true, oidc: false });
    // Assets: public; a built file answers, an unknown name 404s.
    const shell = await (await fetch(`${h.url}/login`)).text();
    const script = /src="\/assets\/([^"]+)"/.exec(shell)?.[1];
    expect(script).toMatch(/^app-[A-Z0-9]+\.js$/);
    expect((await fetch(`${h.url}/assets/${script}`)).status).toBe(200);
    expect((await fetch(`${h.url}/assets/app-NOSUCH.js`)).status).toBe(404);
  });

  it('page routes: signed-out callers go to /login, members away from admin pages to /settings', async () => {
    const member = await signIn(h.url, '/auth/login', { login: 'bob', password: PASSWORD });
    const adminSession = await signIn(h.url, '/auth/login', { token: h.adminToken });
    const cells: string[] = [];
    const page = async (path: string, who: string, headers: Record<string, string>) => {
      const answer = await fetch(`${h.url}${path}`, { headers, redirect: 'manual' });
      cells.push(`${path} ${who} ${answer.status} ${answer.headers.get('location') ?? ''}`.trim());
      return answer;
    };
    for (const path of ADMIN_PAGES) {
      // Refused: nobody, and bearer credentials (pages read only the session cookie).
      for (const [who, headers] of [
        ['anonymous', {}],
        ['admin token', { authorization: `Bearer ${h.adminToken}` }],
        ['self-service key', { 'x-api-key': selfServiceKey }],
      ] as const) {
        const answer = await page(path, who, headers);
        expect(answer.status, `${path} as ${who}`).toBe(303);
        expect(answer.headers.get('location')).toBe('/login');
      }
      const asMember = await page(path, 'member', { cookie: member.cookie });
      expect(asMember.status, `${path} as a member`).toBe(303);
      expect(asMember.headers.get('location')).toBe('/settings');
      // Control: the admin's session gets the shell.
      const asAdmin = await page(path, 'admin', { cookie: adminSession.cookie });
      expect(asAdmin.status, `${path} as the admin`).toBe(200);
      expect(asAdmin.headers.get('content-type')).toMatch(/^text\/html/);
    }
    for (const path of MEMBER_PAGES) {
      const anonymous = await page(path, 'anonymous', {});
      expect(anonymous.status).toBe(303);
      expect(anonymous.headers.get('location')).toBe('/login');
      const bearer = await page(path, 'admin token', { authorization: `Bearer ${h.adminToken}` });
      expect(bearer.status).toBe(303);
      // Controls: a member and the admin both get their settings page.
      expect((await page(path, 'member', { cookie: member.cookie })).status).toBe(200);
      expect((await page(path, 'admin', { cookie: adminSession.cookie })).status).toBe(200);
    }
    expect(cells).toHaveLength(ADMIN_PAGES.length * 5 + MEMBER_PAGES.length * 4);
  });
});
