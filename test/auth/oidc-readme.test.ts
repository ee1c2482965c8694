// The README's single sign-on configuration, signed in with as written: the tollgate.yml block marked
// for this test is loaded unchanged but for its two addresses — the provider's issuer and Tollgate's
// public URL — which point at a real OpenID provider (oidc-provider) and a Tollgate in this process.
// The people the README's group_map describes then sign in: an admin, a platform engineer, and someone
// of another domain, refused.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { followSignIn, freePort } from '../helpers/oidc-browser.js';
import { startOidcProvider, type TestProvider } from '../helpers/oidc-provider.js';

const MARKER = '<!-- example: tollgate.yml signed in with by test/auth/oidc-readme.test.ts -->';
const README_ISSUER = 'https://login.example.com/realms/staff';
const README_PUBLIC_URL = 'https://tollgate.example.com';

async function readmeYaml(): Promise<string> {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const parts = readme.split(MARKER);
  expect(parts.length, 'one marked tollgate.yml block').toBe(2);
  const match = /^\s*```yaml\n([\s\S]*?)\n```/.exec(parts[1] ?? '');
  if (!match?.[1]) throw new Error('the marked README example is not followed by a ```yaml block');
  return match[1];
}

describe('the README single sign-on configuration', () => {
  let h: Harness;
  let idp: TestProvider;

  beforeAll(async () => {
    const written = await readmeYaml();
    expect(written).toContain(README_ISSUER);
    expect(written).toContain(README_PUBLIC_URL);
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    idp = await startOidcProvider({ redirectUri: `${publicUrl}/auth/oidc/callback` });
    expect(idp.clientId).toBe('tollgate'); // the README's client_id, unchanged
    h = await startHarness({
      port,
      env: { TOLLGATE_OIDC_SECRET: idp.clientSecret },
      yaml: written.replace(README_ISSUER, idp.issuer).replace(README_PUBLIC_URL, publicUrl),
    });
  });

  afterAll(async () => {
    await h?.close();
    await idp?.close();
  });

  it('loads as written: every key of the block is the configuration Tollgate runs with', () => {
    const oidc = h.config.auth.oidc;
    expect(oidc).toMatchObject({
      client_id: 'tollgate',
      scopes: ['openid', 'email', 'profile'],
      groups_claim: 'groups',
      allowed_domains: ['example.com'],
      recheck_minutes: 10,
      group_map: {
        'tollgate-admins': { role: 'admin' },
        'eng-platform': { team: 'platform' },
        research: { team: 'research', role: 'member' },
      },
    });
  });

  it('signs people in as its group_map says, and refuses another domain', async () => {
    idp.accounts.set('grace', {
      email: 'grace@example.com',
      preferred_username: 'grace',
      groups: ['tollgate-admins'],
    });
    idp.accounts.set('lin', {
      email: 'lin@example.com',
      preferred_username: 'lin',
      groups: ['eng-platform'],
    });
    idp.accounts.set('eve', { email: 'eve@elsewhere.example', groups: ['tollgate-admins'] });

    const grace = await followSignIn(h.url, idp, 'grace');
    expect(grace.status, grace.body).toBe(303);
    const teams = await grace.session?.call('GET', '/admin/v1/teams');
    expect(teams?.status).toBe(200);

    const lin = await followSignIn(h.url, idp, 'lin');
    expect(lin.status, lin.body).toBe(303);
    const me = await lin.session?.call('GET', '/api/v1/me');
    expect(me?.json).toMatchObject({ name: 'lin', role: 'member', team: 'platform' });
    expect((await lin.session?.call('GET', '/admin/v1/teams'))?.status).toBe(403);

    const eve = await followSignIn(h.url, idp, 'eve');
    expect(eve.status).toBe(403);
    expect(eve.session).toBeNull();
    expect((await h.services.users.list()).map((u) => u.email)).not.toContain('eve@elsewhere.example');
  });
});
