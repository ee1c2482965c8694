// The Anthropic page in Chromium: "Sync now" imports the fake's reports and shows the reconciliation
// (the request that went around Tollgate flagged, Tollgate's own traffic matching, the same figures the
// API gives), Claude Code activity per coder, the spend limits checked and mirrored after a confirmation;
// and the users page shows a coder's Claude Code activity on their row (a coder without any is the control).
import { randomBytes } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
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

const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 15_000 });
const testKey = (end: string) => `sk-ant-api03-test-page-${randomBytes(30).toString('hex')}${end}`;
const ORG_KEY = testKey('org1');
const STRAY_KEY = testKey('str2');
const ADMIN_KEY = `sk-ant-admin01-test-page-${randomBytes(30).toString('hex')}adm3`;
const MODEL = 'claude-sonnet-4-6';
const today = () => new Date().toISOString().slice(0, 10);

describe.skipIf(!hasChromium)('the Anthropic page in Chromium', () => {
  let h: Harness;
  let browser: Browser;
  beforeAll(async () => {
    h = await startHarness();
    browser = await launchBrowser();
    await h.services.credentials.add(h.admin, {
      name: 'org-key',
      provider: 'anthropic',
      secret: ORG_KEY,
      validate: true,
    });
    await h.services.credentials.add(h.admin, {
      name: 'org-admin',
      provider: 'anthropic-admin',
      secret: ADMIN_KEY,
      validate: true,
    });
    h.fake.admin.addApiKey({ secret: ORG_KEY, id: 'apikey_page0001', name: 'tollgate org key' });
    h.fake.admin.addApiKey({ secret: STRAY_KEY, id: 'apikey_stray001', name: 'laptop key' });
    await h.services.users.add(h.admin, { name: 'bob', email: 'bob@example.com' });
    await h.services.users.add(h.admin, { name: 'carol', email: 'carol@example.com' });
    await h.api('PUT', '/admin/v1/budgets', { body: { scope: 'org', period: 'month', limit_usd: '250' } });
    await h.client(await h.key({ user: 'bob' })).messages.create({
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: 'user', content: 'hello [[fake output_tokens=30]]' }],
    });
    const around = await new Anthropic({
      apiKey: STRAY_KEY,
      baseURL: h.fake.url,
      maxRetries: 0,
    }).messages.create({
      model: MODEL,
      max_tokens: 50,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(around.usage.input_tokens).toBeGreaterThan(0);
    h.fake.claudeCode.add({
      date: `${today()}T00:00:00Z`,
      actor: { type: 'user_actor', email_address: 'bob@example.com' },
      organization_id: 'org_fake_0001',
      customer_type: 'api',
      terminal_type: 'vscode',
      core_metrics: {
        num_sessions: 7,
        lines_of_code: { added: 120, removed: 30 },
        commits_by_claude_code: 3,
        pull_requests_by_claude_code: 1,
      },
      tool_actions: { edit_tool: { accepted: 9, rejected: 1 } },
      model_breakdown: [
        {
          model: MODEL,
          tokens: { input: 1000, output: 500, cache_read: 0, cache_creation: 0 },
          estimated_cost: { currency: 'USD', amount: 125 },
        },
      ],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it('syncs, shows the reconciliation and Claude Code, and mirrors the limits', async () => {
    const { page, problems, context } = await openPage(browser);
    await signInWithToken(page, h.url, h.adminToken);
    await page.goto(`${h.url}/anthropic`);
    await poll(() => page.getByText('Never synced').count()).toBe(1);

    await page.getByLabel('Until').fill(new Date(Date.now() + 86_400_000).toISOString().slice(0, 10));
    await page.getByRole('button', { name: 'Show' }).click();
    await page.getByRole('button', { name: 'Sync now' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Sync' }).click();
    await poll(() => page.getByRole('status').first().textContent()).toMatch(
      /Imported \d+ usage .* and 1 Claude Code rows/,
    );

    const table = page.getByRole('table', { name: "Anthropic's usage report beside Tollgate's ledger" });
    await poll(() => table.locator('tbody tr').count()).toBe(2);
    const api = await h.api(
      'GET',
      `/admin/v1/anthropic/reconciliation?until=${new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)}`,
    );
    expect(api.json.rows).toHaveLength(2);
    const strayRow = table.locator('tbody tr', { hasText: 'laptop key' });
    await poll(() => strayRow.getByText('not through Tollgate').count()).toBe(1);
    const ownRow = table.locator('tbody tr', { hasText: 'org-key' });
    await poll(() => ownRow.getByText('matches').count()).toBe(1);

    const coders = page.getByRole('table', { name: 'Claude Code activity per coder' });
    const bobRow = coders.locator('tbody tr', { hasText: 'bob@example.com' });
    await poll(() => bobRow.textContent()).toContain('90%');
    expect(await bobRow.textContent()).toContain('$1.25');

    await page.getByRole('button', { name: "Check Anthropic's limits" }).click();
    const limits = page.getByRole('table', { name: "Monthly spend limits: Anthropic's beside Tollgate's" });
    await poll(() => limits.locator('tbody tr', { hasText: 'organisation' }).textContent()).toContain('set');
    expect(h.fake.spendLimits.limits()).toEqual([]);
    await page.getByRole('button', { name: 'Mirror to Anthropic' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Set limits' }).click();
    await poll(() => page.getByText('Set 1 spend limit(s) at Anthropic.').count()).toBe(1);
    expect(h.fake.spendLimits.limits().map((l) => l.amount)).toEqual(['25000']);
    await poll(() => limits.locator('tbody tr', { hasText: 'organisation' }).textContent()).toContain(
      'matches',
    );

    for (const size of [DESKTOP, PHONE]) {
      await page.setViewportSize(size);
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: `/tmp/anthropic-${size.width}.png`, fullPage: true });
    }

    await page.setViewportSize(DESKTOP);
    await page.goto(`${h.url}/users`);
    const users = page.getByRole('table', { name: 'Users, their sign-in and budgets this period' });
    await poll(() => users.locator('tbody tr', { hasText: 'bob' }).textContent()).toContain('7 sessions');
    expect(await users.locator('tbody tr', { hasText: 'carol' }).textContent()).toContain('none imported');
    expect(await seriousViolations(page)).toEqual([]);
    await page.screenshot({ path: '/tmp/anthropic-users.png', fullPage: true });
    expect(problems).toEqual([]);
    await context.close();
  });

  it('says plainly when the organisation has no access to spend limits', async () => {
    const { page, problems, context } = await openPage(browser);
    await signInWithToken(page, h.url, h.adminToken);
    await page.goto(`${h.url}/anthropic`);
    h.fake.spendLimits.setNoAccess(true);
    try {
      await page.getByRole('button', { name: "Check Anthropic's limits" }).click();
      await poll(() => page.getByRole('alert').first().textContent()).toContain('no access to spend limits');
    } finally {
      h.fake.spendLimits.setNoAccess(false);
    }
    await page.getByRole('button', { name: "Check Anthropic's limits" }).click();
    await poll(() => page.getByRole('table', { name: /Monthly spend limits/ }).count()).toBe(1);
    expect(problems.filter((p) => !p.includes('403'))).toEqual([]);
    await context.close();
  });
});
