// The dashboard's shell in Chromium: the admin signs in with the token and lands on the overview,
// under the strict CSP, with no script error.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, launchBrowser, openPage, signInWithToken } from '../helpers/browser.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

describe.skipIf(!hasChromium)('dashboard shell in Chromium', () => {
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

  it('signs in with the admin token and shows the overview without CSP violations', async () => {
    const { page, problems, context } = await openPage(browser);
    await signInWithToken(page, h.url, h.adminToken);
    await expect.poll(() => page.getByRole('navigation', { name: 'Main' }).isVisible()).toBe(true);
    expect(await page.locator('h1').textContent()).toBe('Overview');
    expect(problems).toEqual([]);
    await context.close();
  }, 60_000);
});
