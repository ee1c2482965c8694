// The overview's "Recent alerts" card in Chromium: a budget crossing delivered to the webhook and one
// left pending (the receiver fails), each with its delivery state, a scope named like an XSS payload
// shown as text, no script error and no serious axe finding.
import { sql } from 'kysely';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Receiver, startReceiver, until } from '../alerts/receiver.js';
import {
  hasChromium,
  launchBrowser,
  openPage,
  seriousViolations,
  signInWithToken,
} from '../helpers/browser.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

const XSS = '<img src=x onerror=alert(1)>';
const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'dashboard alerts [[fake output_tokens=20]]' }],
};

describe.skipIf(!hasChromium)('the overview shows the alerts raised', () => {
  let h: Harness;
  let receiver: Receiver;
  let browser: Browser;
  beforeAll(async () => {
    receiver = await startReceiver();
    h = await startHarness({
      env: { TOLLGATE_ALERTS_WEBHOOK_URL: receiver.url },
      alerts: { budgetDelayMs: 10, delivery: { backoffMs: 60_000, pollMs: 200 } },
    });
    browser = await launchBrowser();
    await h.orgCredential();
    await h.services.users.add(h.admin, { name: 'probe', monthlyBudgetMicro: null });
    const probe = (await h.services.keys.issue(h.admin, { user: 'probe', policy: {} })).key;
    await h.client(probe).messages.create(PARAMS);
    await h.gateway.deps.ledger.drain();
    const unit = Number(
      (
        await h.installation.db.kysely
          .selectFrom('usage_records')
          .select('cost_micro')
          .executeTakeFirstOrThrow()
      ).cost_micro,
    );
    const ann = await h.services.users.add(h.admin, { name: 'xss-user', monthlyBudgetMicro: 10 * unit });
    await sql`update users set name = ${XSS} where id = ${ann.id}`.execute(h.installation.db.kysely);
    const key = (await h.services.keys.issue(h.admin, { user: ann.id, policy: {} })).key;
    for (let i = 0; i < 5; i++) await h.client(key).messages.create(PARAMS); // 50 %: delivered
    await until(
      'the 50 % POST',
      () => receiver.received.length,
      (n) => n === 1,
    );
    receiver.failNext(503);
    for (let i = 0; i < 3; i++) await h.client(key).messages.create(PARAMS); // 80 %: refused, pending
    await until(
      'the failed 80 % POST',
      () => receiver.received.length,
      (n) => n === 2,
    );
    await h.gateway.alerts.idle();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
    await receiver?.close();
  });

  it('lists each alert with its delivery state; names stay text', async () => {
    const { page, problems, dialogs, context } = await openPage(browser);
    await signInWithToken(page, h.url, h.adminToken);
    const card = page.getByRole('region', { name: 'Recent alerts' });
    await expect.poll(() => card.isVisible(), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => card.getByRole('listitem').count()).toBe(2);
    const items = await card.getByRole('listitem').allTextContents();
    expect(items[0]).toMatch(
      /^pending user <img src=x onerror=alert\(1\)> reached 80% of its monthly budget/,
    );
    expect(items[0]).toContain('last attempt: HTTP 503');
    expect(items[1]).toMatch(
      /^delivered user <img src=x onerror=alert\(1\)> reached 50% of its monthly budget/,
    );
    expect(await card.textContent()).toContain('Undelivered: 1.');
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    expect(dialogs).toEqual([]);
    expect(problems).toEqual([]);
    expect(await seriousViolations(page)).toEqual([]);
    await context.close();
  }, 60_000);
});
