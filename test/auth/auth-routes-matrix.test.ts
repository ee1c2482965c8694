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
];

function bodyFor(path: string, password = PASSWORD): unknown {
  return path === '/auth/password' ? { current_password: password, new_password: password } : undefined;
}

describe('sign-in routes', () => {
  it('every route outside the operations is either a session route below or a public one', () => {
    const auth = h
      .routes()
      .filter((r) => /^(GET|POST|HEAD|PUT|PATCH|DELETE) \/(auth|invite|login)(\/|$)|^(GET|HEAD) \/$/.test(r));
    const known = new Set([...SESSION_ROUTES.map(([m, p]) => `${m} ${p}`), ...PUBLIC_ROUTES]);
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
    expect((await fetch(`${h.url}/invite/tgi_unknown`)).status).toBe(404);
  });
});
