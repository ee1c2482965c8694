// Single sign-on end to end against a real OpenID Provider (oidc-provider): the whole redirect dance
// driven with fetch and a small cookie jar, groups → role and team, the domain rule, forged or stale
// callbacks, de-provisioning at the next session recheck, an outage that de-provisions no one, and the
// refresh token kept only sealed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOidcClient } from '../../src/auth/oidc-client.js';
import { openWithSession } from '../../src/auth/session-secret.js';
import { readJson, type SessionClient } from '../helpers/browser-session.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { type Finished, followSignIn, freePort, Jar } from '../helpers/oidc-browser.js';
import { startOidcProvider, type TestAccount, type TestProvider } from '../helpers/oidc-provider.js';

let h: Harness;
let idp: TestProvider;
let skew = 0;
const RECHECK_MINUTES = 5;
const admin = { actor: 'test-admin' };

/** Follows the redirects of a sign-in as `sub`; `beforeCallback` may alter the callback URL or the jar. */
const ssoSignIn = (sub: string, beforeCallback?: (url: URL, jar: Jar) => URL): Promise<Finished> =>
  followSignIn(h.url, idp, sub, beforeCallback);

async function signedIn(sub: string): Promise<SessionClient> {
  const done = await ssoSignIn(sub);
  expect(done.status, done.body).toBe(303);
  expect(done.location).toBe('/');
  if (!done.session) throw new Error('no session cookie');
  return done.session;
}

function account(sub: string, groups: string[], over: Partial<TestAccount> = {}): void {
  idp.accounts.set(sub, { email: `${sub}@example.com`, groups, ...over });
}

async function userRow(email: string) {
  return h.installation.db.kysely
    .selectFrom('users')
    .selectAll()
    .where('email', '=', email)
    .where('removed_at', 'is', null)
    .executeTakeFirst();
}

function passMinutes(minutes: number): void {
  skew += minutes * 60_000;
}

beforeAll(async () => {
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  idp = await startOidcProvider({ redirectUri: `${publicUrl}/auth/oidc/callback` });
  h = await startHarness({
    port,
    clock: () => Date.now() + skew,
    env: { TEST_OIDC_SECRET: idp.clientSecret },
    yaml: `server:
  public_url: ${publicUrl}
auth:
  oidc:
    issuer: ${idp.issuer}
    client_id: ${idp.clientId}
    client_secret: env:TEST_OIDC_SECRET
    allowed_domains: [example.com]
    recheck_minutes: ${RECHECK_MINUTES}
    group_map:
      tollgate-admins: { role: admin }
      eng: { team: platform }
      research: { team: research }
`,
  });
});
afterAll(async () => {
  await h?.close();
  await idp?.close();
});

describe('sign-in and group mapping', () => {
  it('the sign-in methods offer single sign-on; login redirects to the provider with PKCE, state and nonce', async () => {
    // The login page (the dashboard shell) asks /auth/methods whether to offer single sign-on.
    expect(await (await fetch(`${h.url}/auth/methods`)).json()).toMatchObject({ oidc: true });
    // Control: a server without auth.oidc says no, and has no sign-on route to start.
    const plain = await startHarness();
    try {
      expect(await (await fetch(`${plain.url}/auth/methods`)).json()).toMatchObject({ oidc: false });
      expect((await fetch(`${plain.url}/auth/oidc/login`, { redirect: 'manual' })).status).toBe(404);
    } finally {
      await plain.close();
    }
    const jar = new Jar();
    const start = await jar.fetch(`${h.url}/auth/oidc/login`);
    expect(start.status).toBe(303);
    const to = new URL(start.headers.get('location') ?? '');
    expect(to.origin).toBe(idp.issuer);
    expect(to.searchParams.get('code_challenge_method')).toBe('S256');
    for (const p of ['code_challenge', 'state', 'nonce']) expect(to.searchParams.get(p)).toBeTruthy();
    expect(to.searchParams.get('redirect_uri')).toBe(`${h.url}/auth/oidc/callback`);
    const setCookie = start.headers.getSetCookie().join('\n');
    expect(setCookie).toMatch(/tollgate_oidc=[^;]+; Path=\/auth\/oidc; HttpOnly; SameSite=Lax; Max-Age=600/);
    // The cookie is sealed: neither the state nor the verifier reads from it.
    expect(setCookie).not.toContain(to.searchParams.get('state') ?? '-');
  });

  it('an admin group gives an admin session that reads the admin API', async () => {
    account('ada', ['tollgate-admins']);
    const done = await ssoSignIn('ada');
    // One session cookie; the pending cookie is cleared.
    const cookies = done.setCookies.join('\n');
    expect(cookies).toMatch(/^tollgate_session=tgs_\w+; Path=\/; HttpOnly; SameSite=Lax/m);
    expect(cookies).toMatch(/^tollgate_oidc=; Path=\/auth\/oidc;.*Max-Age=0/m);
    expect(done.jar.get(h.url, 'tollgate_oidc')).toBeUndefined();
    const s = done.session as SessionClient;
    const who = await s.call('GET', '/auth/session');
    expect(who.json).toMatchObject({ method: 'oidc', role: 'admin', user: { name: 'ada', role: 'admin' } });
    expect((await s.call('GET', '/admin/v1/teams')).status).toBe(200);
    expect((await userRow('ada@example.com'))?.oidc_subject).toBe(`${idp.issuer}|ada`);
  });

  it('a member group gives the mapped team (created); new groups change team and role at the next sign-in', async () => {
    account('bob', ['eng']);
    const s = await signedIn('bob');
    expect((await s.call('GET', '/admin/v1/teams')).status).toBe(403);
    const me = await s.call('GET', '/api/v1/me');
    expect(me.status).toBe(200);
    expect(me.json).toMatchObject({ name: 'bob', role: 'member' });
    expect((await h.services.users.show('bob')).team).toBe('platform');

    account('bob', ['research', 'tollgate-admins']);
    const again = await signedIn('bob');
    expect((await again.call('GET', '/admin/v1/teams')).status).toBe(200);
    expect(await h.services.users.show('bob')).toMatchObject({ team: 'research', role: 'admin' });
    account('bob', []);
    await signedIn('bob');
    expect(await h.services.users.show('bob')).toMatchObject({ team: null, role: 'member' });
  });

  it('binds an existing person with the same email instead of creating one', async () => {
    await h.services.users.add(admin, { name: 'carol-local', email: 'Carol@Example.com', role: 'member' });
    account('carol', []);
    const s = await signedIn('carol');
    expect((await s.call('GET', '/api/v1/me')).json).toMatchObject({ name: 'carol-local' });
    const row = await userRow('Carol@Example.com');
    expect(row?.oidc_subject).toBe(`${idp.issuer}|carol`);
  });
});

describe('refusals', () => {
  it('a domain outside allowed_domains is refused: no user, no session (even with an admin group)', async () => {
    account('mallory', ['tollgate-admins'], { email: 'mallory@evil.test' });
    const sessionsBefore = await countSessions();
    const done = await ssoSignIn('mallory');
    expect(done.status).toBe(403);
    expect(done.body).toContain('email domain');
    expect(done.session).toBeNull();
    expect(await userRow('mallory@evil.test')).toBeUndefined();
    expect(await countSessions()).toBe(sessionsBefore);
  });

  it('a tampered state is refused; the same sign-in untampered succeeds', async () => {
    account('dave', ['eng']);
    let code = '';
    const tampered = await ssoSignIn('dave', (url) => {
      code = url.searchParams.get('code') ?? '';
      url.searchParams.set('state', `${url.searchParams.get('state')}x`);
      return url;
    });
    expect(tampered.status).toBe(403);
    expect(tampered.body).toContain('does not belong to this sign-in');
    expect(code).not.toBe('');
    expect(tampered.body).not.toContain(code);
    expect(tampered.session).toBeNull();
    await signedIn('dave');
  });

  it('a missing or expired pending cookie is refused', async () => {
    const missing = await ssoSignIn('dave', (url, jar) => {
      jar.drop(h.url, 'tollgate_oidc');
      return url;
    });
    expect(missing.status).toBe(403);
    expect(missing.session).toBeNull();
    const expired = await ssoSignIn('dave', (url) => {
      passMinutes(11);
      return url;
    });
    expect(expired.status).toBe(403);
    expect(expired.body).toContain('took too long');
    expect(expired.session).toBeNull();
  });

  it('a callback carrying the provider’s error is refused without echoing it', async () => {
    account('erin', ['eng'], { disabled: true });
    const done = await ssoSignIn('erin');
    expect(done.status).toBe(403);
    expect(done.body).toContain('did not sign you in');
    expect(done.session).toBeNull();
  });
});

describe('session recheck with the refresh token', () => {
  it('keeps the refresh token only sealed under the session id', async () => {
    account('fay', ['eng']);
    const s = await signedIn('fay');
    const token = s.cookie.split('=')[1] ?? '';
    const row = await sessionRowOf(s);
    expect(row.oidc_refresh).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const plain = openWithSession(token, row.id, row.oidc_refresh ?? '');
    expect(plain).toBeTruthy();
    const everything = JSON.stringify(
      await h.installation.db.kysely.selectFrom('sessions').selectAll().execute(),
    );
    expect(everything).not.toContain(plain);
    expect(everything).not.toContain(token);
  });

  it('follows group changes at the provider, with one refresh for parallel requests (rotating tokens)', async () => {
    account('gus', ['eng']);
    const s = await signedIn('gus');
    expect((await s.call('GET', '/admin/v1/teams')).status).toBe(403);
    account('gus', ['tollgate-admins']);
    passMinutes(RECHECK_MINUTES + 1);
    const calls = idp.tokenCalls();
    const answers = await Promise.all([1, 2, 3].map(() => s.call('GET', '/admin/v1/teams')));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(idp.tokenCalls() - calls).toBe(1);
    // The rotated refresh token was stored: the next recheck works too.
    passMinutes(RECHECK_MINUTES + 1);
    expect((await s.call('GET', '/admin/v1/teams')).status).toBe(200);
    expect(idp.tokenCalls() - calls).toBe(2);
    expect((await userRow('gus@example.com'))?.disabled_at).toBeNull();
  });

  it('a person disabled at the provider is refused at sign-in, and their session ends at the next refresh with keys revoked', async () => {
    account('hal', ['eng']);
    const s = await signedIn('hal');
    const key = await h.services.keys.issue(admin, { user: 'hal', policy: {}, credential: null });
    passMinutes(1);
    expect((await s.call('GET', '/api/v1/me')).status).toBe(200);

    const hal = idp.accounts.get('hal');
    if (hal) hal.disabled = true;
    expect((await ssoSignIn('hal')).status).toBe(403);
    passMinutes(RECHECK_MINUTES + 1);
    expect((await s.call('GET', '/api/v1/me')).status).toBe(401);

    const row = await userRow('hal@example.com');
    expect(row?.disabled_at).not.toBeNull();
    const keyRow = await h.installation.db.kysely
      .selectFrom('gateway_keys')
      .select('status')
      .where('id', '=', key.id)
      .executeTakeFirstOrThrow();
    expect(keyRow.status).toBe('revoked');
    const audit = await h.installation.db.kysely
      .selectFrom('audit_log')
      .select(['actor', 'target_id'])
      .where('action', '=', 'user.disable')
      .execute();
    expect(audit).toContainEqual({ actor: 'oidc', target_id: row?.id });
    // Re-enabled at the provider, the person stays disabled in Tollgate until an admin enables them.
    if (hal) hal.disabled = false;
    expect((await ssoSignIn('hal')).status).toBe(403);
  });

  it('positive control: a provider outage de-provisions no one (the session and keys stay)', async () => {
    account('ivy', ['eng']);
    const s = await signedIn('ivy');
    const key = await h.services.keys.issue(admin, { user: 'ivy', policy: {}, credential: null });
    await idp.stop();
    try {
      passMinutes(RECHECK_MINUTES + 1);
      expect((await s.call('GET', '/api/v1/me')).status).toBe(200);
      expect(h.logs()).toContain('single sign-on recheck postponed');
      const row = await userRow('ivy@example.com');
      expect(row?.disabled_at).toBeNull();
      const keyRow = await h.installation.db.kysely
        .selectFrom('gateway_keys')
        .select('status')
        .where('id', '=', key.id)
        .executeTakeFirstOrThrow();
      expect(keyRow.status).toBe('active');
    } finally {
      await idp.start();
    }
    // Back up: the postponed recheck runs and succeeds.
    passMinutes(2);
    const calls = idp.tokenCalls();
    expect((await s.call('GET', '/api/v1/me')).status).toBe(200);
    expect(idp.tokenCalls() - calls).toBe(1);
  });
});

describe('discovery', () => {
  it('is lazy and tried again after a failure: a provider down at first is used once it is up', async () => {
    const oidcConfig = h.config.auth.oidc;
    if (!oidcConfig) throw new Error('oidc not configured');
    const pending = { state: 's', nonce: 'n', verifier: 'v'.repeat(43), createdAt: Date.now() };
    await idp.stop();
    // Creating the client asks nothing; the first use fails as an outage.
    const client = createOidcClient(oidcConfig, `${h.url}/auth/oidc/callback`);
    try {
      await expect(client.authorizationUrl(pending)).rejects.toMatchObject({ code: 'upstream_unreachable' });
    } finally {
      await idp.start();
    }
    const url = await client.authorizationUrl(pending);
    expect(url.origin).toBe(idp.issuer);
  });
});

async function countSessions(): Promise<number> {
  const rows = await h.installation.db.kysely.selectFrom('sessions').select('id').execute();
  return rows.length;
}

async function sessionRowOf(s: SessionClient) {
  const who = await readJson(await fetch(`${h.url}/auth/session`, { headers: { cookie: s.cookie } }));
  return h.installation.db.kysely
    .selectFrom('sessions')
    .selectAll()
    .where('id', '=', who.session_id)
    .executeTakeFirstOrThrow();
}
