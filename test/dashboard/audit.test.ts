// The audit log page in Chromium: a filter by action shows only those entries (beside the unfiltered
// list that shows others too), and "Verify chain" reports the intact chain with the count the API gives.
import type { Browser } from 'playwright-core';
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

/** Waits for the page: pages load after navigation, slower when the machine is busy. */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 15_000 });

describe.skipIf(!hasChromium)('audit log page in Chromium', () => {
  let h: Harness;
  let browser: Browser;
  beforeAll(async () => {
    h = await startHarness();
    browser = await launchBrowser();
    await h.api('POST', '/admin/v1/teams', { body: { name: 'red' } });
    await h.api('POST', '/admin/v1/users', { body: { name: 'ada', team: 'red' } });
    // A purged person: their sealed audit fields show as [purged], the others' in the clear.
    await h.api('POST', '/admin/v1/users', { body: { name: 'pam-purged', team: 'red' } });
    expect((await h.api('POST', '/admin/v1/users/pam-purged/purge')).status).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it('filters by action and verifies the chain', async () => {
    const { page, problems, context } = await openPage(browser);
    await signInWithToken(page, h.url, h.adminToken);
    await page.goto(`${h.url}/audit`);
    const actions = () => page.locator('tbody tr td:nth-child(4)').allTextContents();
    await poll(async () => (await actions()).includes('team.add')).toBe(true);
    expect(await actions()).toContain('user.add');

    await page.getByLabel('Action', { exact: true }).fill('user.add');
    await page.getByRole('button', { name: 'Filter' }).click();
    await poll(async () => [...new Set(await actions())]).toEqual(['user.add']);
    const rows = () => page.locator('tbody tr').allTextContents();
    await poll(async () => (await rows()).some((r) => r.includes('ada'))).toBe(true);
    expect((await rows()).some((r) => r.includes('[purged]'))).toBe(true);
    expect((await rows()).some((r) => r.includes('pam-purged'))).toBe(false);
    const api = await h.api('GET', '/admin/v1/audit?action=user.add');
    expect(await page.locator('tbody tr').count()).toBe((api.json.items as unknown[]).length);

    await page.getByRole('button', { name: 'Verify chain' }).click();
    const verified = await h.api('POST', '/admin/v1/audit/verify');
    expect(verified.json.ok).toBe(true);
    await expect
      .poll(() => page.getByRole('status').textContent())
      .toMatch(/The chain is intact: \d+ entries/);

    for (const size of [DESKTOP, PHONE]) {
      await page.setViewportSize(size);
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: `/tmp/audit-${size.width}.png`, fullPage: true });
    }
    expect(problems).toEqual([]);
    await context.close();
  }, 90_000);
});
