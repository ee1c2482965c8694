// The "Gateway keys" page in Chromium: a key issued from the page is shown once (gone after Done and
// after a reload), works at the gateway through the official SDK, is listed with its policy, and once
// revoked from the page (after a confirmation) is refused with 401; rotation shows the new key once.
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

// The issue form and the list's filter both have a "User" select, and the form appears only once the
// users have loaded: scope to the form, or an early lookup lands on the filter.
const issueForm = (page: Page) => page.getByRole('form', { name: 'Issue a key' });

describe.skipIf(!hasChromium)('gateway keys page in Chromium', () => {
  let h: Harness;
  let browser: Browser;
  beforeAll(async () => {
    h = await startHarness();
    await h.orgCredential();
    await h.api('POST', '/admin/v1/users', { body: { name: 'carol', monthly_budget_usd: null } });
    await h.api('POST', '/admin/v1/users', { body: { name: 'dave', monthly_budget_usd: null } });
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it('issues a key shown once, which works until it is revoked from the page', async () => {
    const { page, problems, context } = await openPage(browser);
    await signInWithToken(page, h.url, h.adminToken);
    await page.goto(`${h.url}/keys`);
    await issueForm(page).getByLabel('User', { exact: true }).selectOption({ label: 'carol' });
    await page.getByLabel('Key name (optional)').fill('laptop');
    await page.getByLabel('Allowed models').fill('claude-haiku-4-5');
    await page.getByLabel('Requests per minute').fill('30');
    await page.getByRole('button', { name: 'Issue key' }).click();
    const shown = page.getByLabel('Gateway key', { exact: true });
    await expect.poll(() => shown.count()).toBe(1);
    const key = await shown.inputValue();
    expect(key.startsWith('tg_')).toBe(true);
    expect(await page.getByLabel('Claude Code (one line)').inputValue()).toBe(
      `ANTHROPIC_BASE_URL=${h.url} ANTHROPIC_API_KEY=${key} claude`,
    );
    expect(await page.getByLabel('Anthropic SDK (key in TOLLGATE_KEY)').inputValue()).not.toContain(key);
    await page.screenshot({ path: '/tmp/keys-shown.png', fullPage: true });

    // What the API says: the policy the form gave.
    const listed = (await h.api('GET', '/admin/v1/keys?user=carol')).json.items;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({
      name: 'laptop',
      models: ['claude-haiku-4-5'],
      rpm: 30,
      status: 'active',
    });
    const id: string = listed[0].id;

    // The key works with the official SDK; a model outside its policy is refused (403).
    expect(await statusOf(h.client(key, { maxRetries: 0 }).messages.create(PARAMS))).toBe(200);
    expect(
      await statusOf(
        h.client(key, { maxRetries: 0 }).messages.create({ ...PARAMS, model: 'claude-sonnet-4-6' }),
      ),
    ).toBe(403);

    // Done: the key leaves the page, and a reload does not bring it back.
    await page.getByRole('button', { name: 'Done' }).click();
    await expect.poll(() => shown.count()).toBe(0);
    expect(await page.content()).not.toContain(key);
    await page.reload();
    const row = page.getByRole('row').filter({ hasText: id });
    await expect.poll(() => row.count()).toBe(1);
    expect(await row.textContent()).toContain('models: claude-haiku-4-5 · 30 rpm');
    expect(await page.content()).not.toContain(key);
    expect(page.url()).not.toContain(key);

    // Revoke from the page: the confirmation, then the gateway refuses the key.
    await row.getByRole('button', { name: 'Revoke' }).click();
    const dialog = page.getByRole('dialog', { name: `Revoke ${id}?` });
    await expect.poll(() => dialog.isVisible()).toBe(true);
    expect(await dialog.textContent()).toContain('stops working');
    await dialog.getByRole('button', { name: 'Revoke key' }).click();
    await expect.poll(() => page.getByRole('row').filter({ hasText: id }).count()).toBe(0);
    expect((await h.api('GET', `/admin/v1/keys/${id}`)).json.status).toBe('revoked');
    await expect.poll(() => statusOf(h.client(key, { maxRetries: 0 }).messages.create(PARAMS))).toBe(401);
    // The status filter shows it again as revoked.
    await page.getByLabel('Status').selectOption('revoked');
    await expect.poll(() => page.getByRole('row').filter({ hasText: id }).textContent()).toContain('revoked');
    expect(page.url()).toContain('status=revoked');
    expect(problems).toEqual([]);
    await context.close();
  }, 90_000);

  it('refuses an invalid policy beside a valid one, rotates with the new key shown once, filters by user', async () => {
    const { page, problems, context } = await openPage(browser);
    await signInWithToken(page, h.url, h.adminToken);
    await page.goto(`${h.url}/keys`);
    await issueForm(page).getByLabel('User', { exact: true }).selectOption({ label: 'dave' });
    await page.getByLabel('Expires after').fill('soon');
    await page.getByRole('button', { name: 'Issue key' }).click();
    await expect.poll(() => page.getByRole('alert').count()).toBe(1);
    expect((await h.api('GET', '/admin/v1/keys?user=dave')).json.items).toEqual([]);
    await page.getByLabel('Expires after').fill('30d');
    await page.getByRole('button', { name: 'Issue key' }).click();
    const shown = page.getByLabel('Gateway key', { exact: true });
    await expect.poll(() => shown.count()).toBe(1);
    const first = await shown.inputValue();
    expect(await page.getByRole('heading', { name: 'New key for dave' }).count()).toBe(1);
    await page.getByRole('button', { name: 'Done' }).click();
    const [issued] = (await h.api('GET', '/admin/v1/keys?user=dave')).json.items;
    expect(issued.expires_at).not.toBeNull();

    // Filter by user: only dave's keys.
    await page
      .getByRole('form', { name: 'Filter keys' })
      .getByLabel('User', { exact: true })
      .selectOption({ label: 'dave' });
    await expect.poll(() => page.getByRole('row').filter({ hasText: 'carol' }).count()).toBe(0);
    const row = page.getByRole('row').filter({ hasText: issued.id });
    await expect.poll(() => row.count()).toBe(1);

    // Rotate with no grace: the new key is shown once, the old one is refused, the new one works.
    await row.getByRole('button', { name: 'Rotate' }).click();
    const dialog = page.getByRole('dialog', { name: `Rotate ${issued.id}?` });
    await dialog.getByLabel('Old key').selectOption('');
    await dialog.getByRole('button', { name: 'Rotate key' }).click();
    await expect.poll(() => shown.count()).toBe(1);
    const second = await shown.inputValue();
    expect(second).not.toBe(first);
    expect(await page.getByRole('heading', { name: 'Replacement key for dave' }).count()).toBe(1);
    expect(await statusOf(h.client(second, { maxRetries: 0 }).messages.create(PARAMS))).toBe(200);
    await expect.poll(() => statusOf(h.client(first, { maxRetries: 0 }).messages.create(PARAMS))).toBe(401);
    await page.getByRole('button', { name: 'Done' }).click();
    await expect.poll(() => shown.count()).toBe(0);
    expect(await page.content()).not.toContain(second);

    const refused = problems.filter((p) => p.includes('status of 400 (Bad Request)'));
    expect(refused).toHaveLength(1);
    expect(problems.filter((p) => !refused.includes(p))).toEqual([]);
    await context.close();
  }, 90_000);

  it('has no serious accessibility violations at desktop and phone sizes', async () => {
    await h.key({ user: 'carol' });
    for (const [name, size] of [
      ['desktop', DESKTOP],
      ['phone', PHONE],
    ] as const) {
      const { page, problems, context } = await openPage(browser, size);
      await signInWithToken(page, h.url, h.adminToken);
      await page.goto(`${h.url}/keys`);
      await expect.poll(() => page.getByRole('button', { name: 'Revoke' }).count()).toBeGreaterThan(0);
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: `/tmp/keys-${name}.png`, fullPage: true });
      await page.getByRole('button', { name: 'Rotate' }).first().click();
      expect(await seriousViolations(page)).toEqual([]);
      await page.keyboard.press('Escape');
      expect(problems).toEqual([]);
      await context.close();
    }
  }, 90_000);
});
