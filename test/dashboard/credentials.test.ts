// The credentials page in Chromium as the admin: adding a key the upstream rejects shows the server's
// reason and stores nothing, beside an accepted one that is stored and listed with its hint and live
// check; disable then shows in the API; axe at both sizes.
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
import { canaryAnthropicKey } from '../helpers/secrets.js';

/** Waits for the page: pages load after navigation, slower when the machine is busy. */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 15_000 });

describe.skipIf(!hasChromium)('credentials page in Chromium', () => {
  let h: Harness;
  let browser: Browser;
  beforeAll(async () => {
    h = await startHarness();
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  const listed = async () =>
    ((await h.api('GET', '/admin/v1/credentials')).json.items as Array<{ name: string; status: string }>).map(
      (c) => `${c.name}:${c.status}`,
    );

  it('refuses a rejected secret with the reason beside an accepted one that is stored', async () => {
    const { page, problems, context } = await openPage(browser);
    await signInWithToken(page, h.url, h.adminToken);
    await page.goto(`${h.url}/credentials`);
    await poll(() => page.getByText('No credentials yet').count()).toBe(1);
    const before = await listed();

    const bad = canaryAnthropicKey();
    h.fake.revokeKey(bad);
    await page.getByLabel('Name', { exact: true }).fill('revoked');
    await page.getByLabel('Secret', { exact: true }).fill(bad);
    await page.getByRole('button', { name: 'Add credential' }).click();
    const form = page.locator('form', { has: page.getByRole('button', { name: 'Add credential' }) });
    await poll(() => form.getByRole('alert').textContent()).toMatch(/Anthropic rejected this key/);
    expect(await listed()).toEqual(before);

    const good = canaryAnthropicKey();
    await page.getByLabel('Name', { exact: true }).fill('org-key');
    await page.getByLabel('Secret', { exact: true }).fill(good);
    await page.getByRole('button', { name: 'Add credential' }).click();
    await poll(() => page.getByRole('status').textContent()).toMatch(/org-key was checked and stored/);
    expect(await listed()).toEqual([...before, 'org-key:active']);
    const row = page.getByRole('row', { name: /org-key/ });
    await poll(() => row.textContent()).toContain(`${good.slice(0, 16)}...${good.slice(-4)}`);
    await poll(() => row.textContent()).toContain('ACTIVE: accepted by Anthropic');
    expect(await page.content()).not.toContain(good);
    expect(await page.getByLabel('Secret', { exact: true }).inputValue()).toBe('');

    await page.getByRole('button', { name: 'Disable org-key' }).click();
    await poll(() => listed()).toEqual([...before, 'org-key:inactive']);
    await poll(() => page.getByRole('button', { name: 'Enable org-key' }).count()).toBe(1);

    for (const size of [DESKTOP, PHONE]) {
      await page.setViewportSize(size);
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: `/tmp/credentials-${size.width}.png`, fullPage: true });
    }
    // The browser logs the refused request (400) as a console error; nothing else may appear.
    expect(problems.filter((p) => !/Failed to load resource: .* 400/.test(p))).toEqual([]);
    await context.close();
  }, 90_000);
});
