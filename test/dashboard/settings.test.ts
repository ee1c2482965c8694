// "My settings" in Chromium as a member: signed in through an invite link, they save an Anthropic key
// the upstream rejects (friendly error, nothing stored) beside one it accepts ("configured" + hint, the
// secret nowhere in the page), and issue themselves a key shown once; axe at both sizes.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DESKTOP,
  hasChromium,
  launchBrowser,
  openPage,
  PHONE,
  seriousViolations,
} from '../helpers/browser.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

/** Waits for the page: pages load after navigation, slower when the machine is busy. */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 15_000 });

describe.skipIf(!hasChromium)('My settings page in Chromium', () => {
  let h: Harness;
  let browser: Browser;
  beforeAll(async () => {
    h = await startHarness();
    browser = await launchBrowser();
    await h.api('POST', '/admin/v1/users', { body: { name: 'mira', email: 'mira@example.test' } });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it('a member saves a rejected key (error, nothing stored) and an accepted one (hint only)', async () => {
    const { page, problems, context } = await openPage(browser);
    // Sign in as a person: the invite link, then a password.
    const link = await h.api('POST', '/admin/v1/users/mira/login-link');
    expect(link.status).toBe(201);
    await page.goto(`${h.url}${new URL(link.json.url as string).pathname}`);
    await page.getByLabel('New password', { exact: true }).fill('correct horse battery');
    await page.getByLabel('New password, again').fill('correct horse battery');
    await page.getByRole('button', { name: 'Set password and sign in' }).click();
    await page.waitForURL((u) => u.pathname === '/settings');
    await poll(() => page.getByText('Not configured').count()).toBe(3);

    const settings = async () => {
      const r = await page.evaluate(async () => (await fetch('/api/v1/me/settings')).json());
      return r as {
        hasAnthropicKey: boolean;
        anthropicKeyHint: string | null;
        preferredModel: string | null;
      };
    };
    const form = page.locator('form', { has: page.getByRole('heading', { name: 'Anthropic API key' }) });

    // Refusal: the upstream rejects the key.
    const bad = canaryAnthropicKey();
    h.fake.revokeKey(bad);
    await form.getByLabel('Anthropic API key', { exact: true }).fill(bad);
    await form.getByRole('button', { name: 'Save Anthropic API key' }).click();
    await poll(() => form.getByRole('alert').textContent()).toMatch(/Anthropic rejected/);
    expect(await settings()).toMatchObject({ hasAnthropicKey: false, anthropicKeyHint: null });
    expect(await page.content()).not.toContain(bad);

    // Positive control: an accepted key is stored and only its hint comes back.
    const good = canaryAnthropicKey();
    await form.getByLabel('Anthropic API key', { exact: true }).fill(good);
    await form.getByRole('button', { name: 'Save Anthropic API key' }).click();
    const hint = `${good.slice(0, 16)}...${good.slice(-4)}`;
    await poll(() => page.getByTestId('own-anthropic-state').textContent()).toBe(`Configured · ${hint}`);
    expect(await settings()).toMatchObject({ hasAnthropicKey: true, anthropicKeyHint: hint });
    expect(await page.content()).not.toContain(good);
    expect(await page.getByLabel('Replace Anthropic API key').inputValue()).toBe('');

    // The model list is what the server serves (GET /api/v1/me), and nothing else.
    const me = (await page.evaluate(async () => (await fetch('/api/v1/me')).json())) as { models: string[] };
    const served = me.models;
    expect(served).toContain('claude-haiku-4-5');
    const select = page.getByLabel('Model', { exact: true });
    await poll(() => select.locator('option').count()).toBe(served.length + 1);
    expect((await select.locator('option').allTextContents()).slice(1)).toEqual(served);
    // A model the server does not serve is refused by the same route the page uses…
    const refused = await page.evaluate(
      async (csrf) => {
        const r = await fetch('/api/v1/me/settings', {
          method: 'PATCH',
          headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
          body: JSON.stringify({ preferredModel: 'claude-unknown-9' }),
        });
        return r.status;
      },
      ((await page.evaluate(async () => (await fetch('/auth/session')).json())) as { csrf_token: string })
        .csrf_token,
    );
    expect(refused).toBe(400);
    expect((await settings()).preferredModel).toBe(null);
    // …and one it serves, chosen on the page, is saved.
    await select.selectOption('claude-haiku-4-5');
    await page.getByRole('button', { name: 'Save model' }).click();
    await poll(async () => (await settings()).preferredModel).toBe('claude-haiku-4-5');

    // A key issued to oneself is shown once and gone when dismissed.
    await page.getByLabel('New key name (optional)').fill('laptop');
    await page.getByRole('button', { name: 'Issue a key' }).click();
    const shown = page.getByLabel('Your new gateway key');
    await poll(() => shown.count()).toBe(1);
    const key = await shown.inputValue();
    expect(key).toMatch(/^tg_/);
    const keys = await h.api('GET', '/admin/v1/keys?user=mira');
    expect((keys.json.items as Array<{ name: string | null }>).map((k) => k.name)).toContain('laptop');
    await page.getByRole('button', { name: 'I have copied it' }).click();
    expect(await page.content()).not.toContain(key);

    for (const size of [DESKTOP, PHONE]) {
      await page.setViewportSize(size);
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: `/tmp/settings-${size.width}.png`, fullPage: true });
    }
    // The browser logs each refused request (400) as a console error; nothing else may appear.
    expect(problems.filter((p) => !/Failed to load resource: .* 400/.test(p))).toEqual([]);
    await context.close();
  }, 90_000);
});
