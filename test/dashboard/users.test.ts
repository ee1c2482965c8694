// The "Users & teams" page in Chromium, driven as an admin would: teams and users created from the
// page exist in the API, budgets set there are the API's, a refused input shows the server's reason
// and changes nothing, the invite link is shown once, and removing a user (after a confirmation that
// says their keys are revoked) stops their key at the gateway.
import Anthropic from '@anthropic-ai/sdk';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DESKTOP,
  hasChromium,
  launchBrowser,
  openPage,
  PHONE,
  seriousViolations,
  signInWithToken,
} from '../helpers/browser.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (e) {
    if (e instanceof Anthropic.APIError) return e.status ?? 0;
    throw e;
  }
}

const row = (page: Page, name: string) => page.getByRole('row').filter({ hasText: name });

describe.skipIf(!hasChromium)('users & teams page in Chromium', () => {
  let h: Harness;
  let browser: Browser;
  beforeAll(async () => {
    h = await startHarness();
    await h.orgCredential();
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it('creates a team and a user, sets budgets, refuses a bad name, shows an invite link once', async () => {
    const { page, problems, context } = await openPage(browser);
    await signInWithToken(page, h.url, h.adminToken);
    await page.goto(`${h.url}/users`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('Users & teams');

    // Refusal: a name the API refuses shows its reason and creates nothing…
    await page.getByLabel('Team name').fill('bad name!');
    await page.getByRole('button', { name: 'Create team' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toContain('letters, digits');
    expect((await h.api('GET', '/admin/v1/teams')).json.items).toEqual([]);
    // …beside the positive control.
    await page.getByLabel('Team name').fill('platform');
    await page.getByLabel('Monthly budget (USD, optional)').fill('500');
    await page.getByRole('button', { name: 'Create team' }).click();
    await expect.poll(() => row(page, 'platform').count()).toBeGreaterThan(0);
    const team = await h.api('GET', '/admin/v1/teams/platform');
    expect(team.status).toBe(200);
    expect(team.json.monthly_budget_usd).toBe('500.00');

    // A user in that team with a monthly budget.
    await page.getByLabel('Name', { exact: true }).fill('alice');
    await page.getByLabel('Email (optional)').fill('alice@example.test');
    await page.locator('#user-team').selectOption({ label: 'platform' });
    await page.getByLabel('Monthly budget (USD)', { exact: true }).fill('100');
    await page.getByRole('button', { name: 'Create user' }).click();
    await expect.poll(() => row(page, 'alice@example.test').count()).toBe(1);
    const alice = await h.api('GET', '/admin/v1/users/alice');
    expect(alice.json).toMatchObject({ team: 'platform', role: 'member', monthly_budget_usd: '100.00' });
    expect(await row(page, 'alice@example.test').textContent()).toContain('not yet (send an invite link)');

    // Edit budgets from the page: the user's monthly and the team's daily limit.
    await page.locator('#user-budget-target').selectOption({ label: 'alice' });
    await page.locator('#user-budget-amount').fill('250');
    await page
      .getByRole('form', { name: "Set a user's budget" })
      .getByRole('button', { name: 'Set budget' })
      .click();
    await expect
      .poll(() => page.locator('form[aria-label="Set a user\'s budget"]').textContent())
      .toContain('Monthly budget of alice is now $250.00.');
    const userBudgets = await h.api('GET', '/admin/v1/budgets?scope=user&target=alice');
    expect(userBudgets.json.items).toMatchObject([
      { period: 'month', limit_usd: '250.00', spent_usd: '0.00' },
    ]);
    await page.locator('#team-budget-period').selectOption('day');
    await page.locator('#team-budget-amount').fill('20');
    await page
      .getByRole('form', { name: "Set a team's budget" })
      .getByRole('button', { name: 'Set budget' })
      .click();
    await expect
      .poll(() => page.getByRole('img', { name: /^platform, daily budget: \$0\.00 spent/ }).count())
      .toBe(1);
    const teamBudgets = await h.api('GET', '/admin/v1/budgets?scope=team&target=platform');
    expect(
      teamBudgets.json.items.map((b: { period: string; limit_usd: string }) => [b.period, b.limit_usd]),
    ).toEqual([
      ['day', '20.00'],
      ['month', '500.00'],
    ]);
    // A limit the API refuses changes nothing.
    await page.locator('#team-budget-amount').fill('-5');
    await page
      .getByRole('form', { name: "Set a team's budget" })
      .getByRole('button', { name: 'Set budget' })
      .click();
    await expect.poll(() => page.getByRole('alert').count()).toBeGreaterThan(0);
    expect((await h.api('GET', '/admin/v1/budgets?scope=team&target=platform')).json.items[0].limit_usd).toBe(
      '20.00',
    );

    // Invite link: shown once, gone after Done and after a reload.
    await row(page, 'alice@example.test').getByRole('button', { name: 'Invite link' }).click();
    const field = page.getByLabel('Invite link', { exact: true });
    await expect.poll(() => field.count()).toBe(1);
    const url = await field.inputValue();
    expect(url).toMatch(/^https?:\/\/[^/]+\/invite\/[^/]+$/);
    expect((await h.api('GET', `/auth/invite/${url.split('/invite/')[1]}`)).json.user).toBe('alice');
    await page.screenshot({ path: '/tmp/users-invite.png', fullPage: true });
    await page.getByRole('button', { name: 'Done' }).click();
    await expect.poll(() => field.count()).toBe(0);
    expect(await page.content()).not.toContain(url);
    await page.reload();
    await expect.poll(() => row(page, 'alice@example.test').count()).toBe(1);
    expect(await page.content()).not.toContain(url);
    expect(page.url()).not.toContain('invite');

    // The browser logs the two refused requests (400) this test made on purpose; nothing else.
    const refused = problems.filter((p) => p.includes('status of 400 (Bad Request)'));
    expect(refused).toHaveLength(2);
    expect(problems.filter((p) => !refused.includes(p))).toEqual([]);
    await context.close();
  }, 90_000);

  it('removes a user after saying their keys are revoked, and their key stops working', async () => {
    const key = await h.key({ user: 'bob' });
    // Positive control: the key works before removal.
    expect(await statusOf(h.client(key, { maxRetries: 0 }).messages.create(PARAMS))).toBe(200);
    const { page, problems, context } = await openPage(browser);
    await signInWithToken(page, h.url, h.adminToken);
    await page.goto(`${h.url}/users`);
    const bob = page.getByRole('row').filter({ has: page.getByText('bob', { exact: true }) });
    await expect.poll(() => bob.count()).toBe(1);
    await bob.getByRole('button', { name: 'Remove' }).click();
    const dialog = page.getByRole('dialog', { name: 'Remove bob?' });
    await expect.poll(() => dialog.isVisible()).toBe(true);
    const text = await dialog.textContent();
    expect(text).toContain('revokes all their gateway keys (1 active)');
    expect(text).toContain('ends their sessions');
    // Cancel first: nothing happens and the key still works.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect((await h.api('GET', '/admin/v1/users/bob')).status).toBe(200);
    expect(await statusOf(h.client(key, { maxRetries: 0 }).messages.create(PARAMS))).toBe(200);
    await bob.getByRole('button', { name: 'Remove' }).click();
    await dialog.getByRole('button', { name: 'Remove bob' }).click();
    await expect.poll(() => page.getByText('bob removed; 1 gateway key(s) revoked.').count()).toBe(1);
    expect((await h.api('GET', '/admin/v1/users/bob')).status).toBe(404);
    await expect.poll(() => statusOf(h.client(key, { maxRetries: 0 }).messages.create(PARAMS))).toBe(401);
    expect(problems).toEqual([]);
    await context.close();
  }, 60_000);

  it('has no serious accessibility violations at desktop and phone sizes', async () => {
    for (const [name, size] of [
      ['desktop', DESKTOP],
      ['phone', PHONE],
    ] as const) {
      const { page, problems, context } = await openPage(browser, size);
      await signInWithToken(page, h.url, h.adminToken);
      await page.goto(`${h.url}/users`);
      await expect.poll(() => page.getByRole('heading', { name: 'Users', exact: true }).count()).toBe(1);
      await expect.poll(() => row(page, 'alice@example.test').count()).toBe(1);
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: `/tmp/users-${name}.png`, fullPage: true });
      // The confirmation dialog too.
      await row(page, 'alice@example.test').getByRole('button', { name: 'Remove' }).click();
      expect(await seriousViolations(page)).toEqual([]);
      await page.keyboard.press('Escape');
      expect(problems).toEqual([]);
      await context.close();
    }
  }, 90_000);
});
