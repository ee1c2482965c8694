// Single sign-on in Chromium: "Sign in with SSO" on /login, the provider's own login form (oidc-provider's
// dev interactions, typed into as a person would), and back on the dashboard signed in — a member on
// /settings, an admin on the overview — while a person whose email domain is not allowed ends on the
// refusal, with no session.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, launchBrowser, openPage } from '../helpers/browser.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { freePort } from '../helpers/oidc-browser.js';
import { startOidcProvider, type TestProvider } from '../helpers/oidc-provider.js';

describe.skipIf(!hasChromium)('single sign-on in the browser', () => {
  let h: Harness;
  let idp: TestProvider;
  let browser: Browser;

  beforeAll(async () => {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    idp = await startOidcProvider({ redirectUri: `${publicUrl}/auth/oidc/callback`, forms: true });
    h = await startHarness({
      port,
      env: { TEST_OIDC_SECRET: idp.clientSecret },
      yaml: `server:
  public_url: ${publicUrl}
auth:
  oidc:
    issuer: ${idp.issuer}
    client_id: ${idp.clientId}
    client_secret: env:TEST_OIDC_SECRET
    allowed_domains: [example.com]
    group_map:
      tollgate-admins: { role: admin }
      eng: { team: platform }
`,
    });
    idp.accounts.set('ada', { email: 'ada@example.com', groups: ['tollgate-admins'] });
    idp.accounts.set('bob', { email: 'bob@example.com', groups: ['eng'] });
    idp.accounts.set('eve', { email: 'eve@elsewhere.example', groups: [] });
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
    await idp?.close();
  });

  /** /login → "Sign in with SSO" → the provider's login form, filled in as `who`, submitted. */
  async function throughProvider(page: Page, who: string): Promise<void> {
    await page.goto(`${h.url}/login`, { waitUntil: 'networkidle' });
    await page.getByRole('link', { name: 'Sign in with SSO' }).click();
    await page.waitForURL((u) => u.origin === idp.issuer && u.pathname.startsWith('/interaction/'));
    await page.getByPlaceholder('Enter any login').fill(who);
    await page.getByPlaceholder('and password').fill('any password at the provider');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.waitForURL((u) => u.origin === h.url || u.pathname.endsWith('/consent'), { timeout: 15_000 });
    // A consent step, when the provider shows one: continue.
    if (new URL(page.url()).origin === idp.issuer) {
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.waitForURL((u) => u.origin === h.url, { timeout: 15_000 });
    }
  }

  async function session(page: Page) {
    const answer = await page.context().request.get(`${h.url}/auth/session`);
    return { status: answer.status(), json: answer.status() === 200 ? await answer.json() : null };
  }

  it('a member signs in through the provider and lands on their settings, signed in', async () => {
    const { page, context, dialogs } = await openPage(browser);
    expect((await session(page)).status).toBe(401);
    await throughProvider(page, 'bob');
    await page.waitForURL(`${h.url}/settings`);
    await expect.poll(() => page.locator('h1').count()).toBeGreaterThan(0);
    const who = await session(page);
    expect(who.status).toBe(200);
    expect(who.json).toMatchObject({ method: 'oidc', role: 'member', user: { name: 'bob', role: 'member' } });
    expect((await h.services.users.show('bob')).team).toBe('platform');
    // The member is kept off the admin pages (control: the admin below reaches the overview).
    await page.goto(`${h.url}/users`);
    expect(new URL(page.url()).pathname).toBe('/settings');
    expect(dialogs).toEqual([]);
    await context.close();
  }, 60_000);

  it('an admin group lands on the overview with an admin session', async () => {
    const { page, context, problems } = await openPage(browser);
    await throughProvider(page, 'ada');
    await page.waitForURL(`${h.url}/`);
    await expect.poll(() => page.getByRole('navigation', { name: 'Main' }).isVisible()).toBe(true);
    expect(await page.locator('h1').textContent()).toBe('Overview');
    expect((await session(page)).json).toMatchObject({
      method: 'oidc',
      role: 'admin',
      user: { name: 'ada' },
    });
    // Only Tollgate's pages count here (the provider's dev form fetches a web font it may not reach).
    expect(problems.filter((p) => !/fonts\.googleapis|ERR_|net::/.test(p))).toEqual([]);
    await context.close();
  }, 60_000);

  it('a person of a domain not allowed ends on the refusal, not signed in', async () => {
    const { page, context, dialogs } = await openPage(browser);
    await throughProvider(page, 'eve');
    expect(new URL(page.url()).pathname).toBe('/auth/oidc/callback');
    await expect
      .poll(() => page.getByText('your email domain may not sign in to this Tollgate').isVisible())
      .toBe(true);
    expect((await context.cookies(h.url)).map((c) => c.name)).not.toContain('tollgate_session');
    expect((await session(page)).status).toBe(401);
    await page.goto(`${h.url}/settings`);
    expect(new URL(page.url()).pathname).toBe('/login');
    expect(
      await h.installation.db.kysely
        .selectFrom('users')
        .select('name')
        .where('email', '=', 'eve@elsewhere.example')
        .execute(),
    ).toEqual([]);
    expect(dialogs).toEqual([]);
    await context.close();
  }, 60_000);
});
