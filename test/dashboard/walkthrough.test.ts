// The end-to-end walk-through in Chromium, every step done in the browser as a person would
// and checked against the API and the CLI: the admin signs in with the token, creates a team and a
// member with a budget, issues them a key (shown once), makes an invite link; the member signs in
// through it and saves a rejected and then an accepted Anthropic key; traffic through the gateway
// with the member's key shows on their settings page (usage and remaining budget), on the overview
// and in the usage explorer, whose CSV export sums to what `tollgate usage --json` says; the key,
// revoked on /keys, is then refused. axe, script errors and dialogs are watched on every page.
// A second test: the explorer's CSV defuses a formula-like name and quotes its comma.
import { readFile } from 'node:fs/promises';
import Anthropic from '@anthropic-ai/sdk';
import { sql } from 'kysely';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usd } from '../../web/src/format.js';
import { remote } from '../api/cli-modes.js';
import {
  hasChromium,
  launchBrowser,
  openPage,
  seriousViolations,
  signInWithToken,
} from '../helpers/browser.js';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

/** Waits for the page: pages load after navigation, slower when the machine is busy. */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 15_000 });

const PASSWORD = 'correct horse battery';
/** Output tokens the fake upstream bills for each request (a directive in the prompt). */
const OUTPUTS = [2000, 3000, 5000];

async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (e) {
    if (e instanceof Anthropic.APIError) return e.status ?? 0;
    throw e;
  }
}

function ask(client: Anthropic, outputTokens: number) {
  return client.messages.create({
    model: 'claude-haiku-4-5',
    max_tokens: 8000,
    messages: [{ role: 'user', content: `hello [[fake output_tokens=${outputTokens}]]` }],
  });
}

/** Opens a page, waits for its h1, and checks axe there (serious or critical findings). */
async function visit(page: Page, url: string, heading: string): Promise<void> {
  await page.goto(url, { waitUntil: 'networkidle' });
  await poll(() => page.locator('h1').first().textContent()).toBe(heading);
  expect(await seriousViolations(page), url).toEqual([]);
}

/** A CSV as the explorer writes it (RFC 4180 quoting), into rows of fields. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else if (c !== '\r') field += c;
  }
  if (field !== '' || row.length > 0) rows.push([...row, field]);
  return rows;
}

/** Clicks "Export CSV" and returns the downloaded file as records keyed by the header. */
async function exportCsv(page: Page): Promise<{ header: string[]; records: Array<Record<string, string>> }> {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Export CSV' }).click(),
  ]);
  const path = await download.path();
  const [header = [], ...lines] = parseCsv(await readFile(path, 'utf8'));
  return {
    header,
    records: lines.map((cells) => Object.fromEntries(header.map((h, i) => [h, cells[i] ?? '']))),
  };
}

const SUMMED = ['requests', 'input_tokens', 'output_tokens', 'cost_micro_usd'] as const;
function sums(rows: ReadonlyArray<Record<string, unknown>>): Record<(typeof SUMMED)[number], number> {
  const total = (f: (typeof SUMMED)[number]) => rows.reduce((n, r) => n + Number(r[f]), 0);
  return {
    requests: total('requests'),
    input_tokens: total('input_tokens'),
    output_tokens: total('output_tokens'),
    cost_micro_usd: total('cost_micro_usd'),
  };
}

/** The day after YYYY-MM-DD (the explorer's "to" is inclusive, the CLI's --until exclusive). */
function nextDay(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
}

/** Selects the explorer's filters by their visible labels and presses Show. */
async function explore(page: Page, by: string, team?: string): Promise<void> {
  await page.getByLabel('Group by').selectOption({ label: by });
  const [teamId] = team ? await page.getByLabel('Team', { exact: true }).selectOption({ label: team }) : [];
  await page.getByRole('button', { name: 'Show' }).click();
  await poll(() => new URL(page.url()).searchParams.get('by')).toBe(by.toLowerCase());
  if (teamId) await poll(() => new URL(page.url()).searchParams.get('team')).toBe(teamId);
  const table = page.getByRole('table', { name: `Usage by ${by.toLowerCase()}` });
  await poll(() => table.or(page.getByText('No usage matches these filters.')).count()).toBe(1);
  await page.waitForLoadState('networkidle');
}

describe.skipIf(!hasChromium)('the walk-through: admin, member, traffic, reports, revocation', () => {
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

  it('walks through the issue from sign-in to revocation', async () => {
    // 1. The admin signs in with the token, creates a team and a member with a monthly budget.
    const admin = await openPage(browser);
    const page = admin.page;
    await signInWithToken(page, h.url, h.adminToken);
    await poll(() => page.locator('h1').first().textContent()).toBe('Overview');
    expect(await seriousViolations(page)).toEqual([]);
    await visit(page, `${h.url}/users`, 'Users & teams');
    await page.getByLabel('Team name').fill('platform');
    await page.getByRole('button', { name: 'Create team' }).click();
    await poll(() => page.getByRole('row').filter({ hasText: 'platform' }).count()).toBeGreaterThan(0);
    await page.getByLabel('Name', { exact: true }).fill('mira');
    await page.getByLabel('Email (optional)').fill('mira@example.test');
    await page.locator('#user-team').selectOption({ label: 'platform' });
    await page.getByLabel('Monthly budget (USD)', { exact: true }).fill('25');
    await page.getByRole('button', { name: 'Create user' }).click();
    const miraRow = page.getByRole('row').filter({ hasText: 'mira@example.test' });
    await poll(() => miraRow.count()).toBe(1);
    expect((await h.api('GET', '/admin/v1/users/mira')).json).toMatchObject({
      team: 'platform',
      role: 'member',
      monthly_budget_usd: '25.00',
    });
    expect(await seriousViolations(page)).toEqual([]);

    // The admin issues a key for the member on /keys: shown once, gone after Done and a reload.
    await visit(page, `${h.url}/keys`, 'Gateway keys');
    await page
      .getByRole('form', { name: 'Issue a key' })
      .getByLabel('User', { exact: true })
      .selectOption({ label: 'mira' });
    await page.getByLabel('Key name (optional)').fill('mira-laptop');
    await page.getByRole('button', { name: 'Issue key' }).click();
    const shown = page.getByLabel('Gateway key', { exact: true });
    await poll(() => shown.count()).toBe(1);
    const key = await shown.inputValue();
    expect(key.startsWith('tg_')).toBe(true);
    expect(await seriousViolations(page)).toEqual([]);
    const listed = (await h.api('GET', '/admin/v1/keys?user=mira')).json.items;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ name: 'mira-laptop', status: 'active' });
    const keyId: string = listed[0].id;
    await page.getByRole('button', { name: 'Done' }).click();
    await poll(() => shown.count()).toBe(0);
    expect(await page.content()).not.toContain(key);
    await page.reload({ waitUntil: 'networkidle' });
    await poll(() => page.getByRole('row').filter({ hasText: keyId }).count()).toBe(1);
    expect(await page.content()).not.toContain(key);
    expect(page.url()).not.toContain(key);

    // 2. An invite link for the member, made on /users.
    await visit(page, `${h.url}/users`, 'Users & teams');
    await miraRow.getByRole('button', { name: 'Invite link' }).click();
    const linkField = page.getByLabel('Invite link', { exact: true });
    await poll(() => linkField.count()).toBe(1);
    const link = await linkField.inputValue();
    expect(link).toMatch(/^https?:\/\/[^/]+\/invite\/[^/]+$/);
    await page.getByRole('button', { name: 'Done' }).click();
    await poll(() => linkField.count()).toBe(0);

    // The member, in a browser context of their own, opens it, sets a password, lands on /settings.
    const member = await openPage(browser);
    const mine = member.page;
    await mine.goto(`${h.url}${new URL(link).pathname}`, { waitUntil: 'networkidle' });
    expect(await seriousViolations(mine)).toEqual([]);
    await mine.getByLabel('New password', { exact: true }).fill(PASSWORD);
    await mine.getByLabel('New password, again').fill(PASSWORD);
    await mine.getByRole('button', { name: 'Set password and sign in' }).click();
    await mine.waitForURL((u) => u.pathname === '/settings');
    await poll(() => mine.getByText('Not configured').count()).toBe(3);
    expect(await seriousViolations(mine)).toEqual([]);
    const meSettings = async () =>
      (await mine.evaluate(async () => (await fetch('/api/v1/me/settings')).json())) as ApiJson;

    // A key the upstream rejects: a friendly error, nothing stored…
    const form = mine.locator('form', { has: mine.getByRole('heading', { name: 'Anthropic API key' }) });
    const bad = canaryAnthropicKey();
    h.fake.revokeKey(bad);
    await form.getByLabel('Anthropic API key', { exact: true }).fill(bad);
    await form.getByRole('button', { name: 'Save Anthropic API key' }).click();
    await poll(() => form.getByRole('alert').textContent()).toMatch(/Anthropic rejected/);
    expect(await meSettings()).toMatchObject({ hasAnthropicKey: false, anthropicKeyHint: null });
    expect(await mine.content()).not.toContain(bad);
    expect(await seriousViolations(mine)).toEqual([]);
    // …beside one it accepts: "configured" with the hint only.
    const good = canaryAnthropicKey();
    await form.getByLabel('Anthropic API key', { exact: true }).fill(good);
    await form.getByRole('button', { name: 'Save Anthropic API key' }).click();
    const hint = `${good.slice(0, 16)}...${good.slice(-4)}`;
    await poll(() => mine.getByTestId('own-anthropic-state').textContent()).toBe(`Configured · ${hint}`);
    expect(await meSettings()).toMatchObject({ hasAnthropicKey: true, anthropicKeyHint: hint });
    expect(await mine.content()).not.toContain(good);

    // 3. Traffic with the member's key through the official SDK, with known output tokens.
    const me = async (path: string) =>
      (await mine.evaluate(async (p) => (await fetch(p)).json(), path)) as ApiJson;
    const before = await me('/api/v1/me');
    const remainingBefore = before.budgets.find(
      (b: ApiJson) => b.scope === 'user' && b.period === 'month',
    ).remaining_usd;
    expect(remainingBefore).toBe('25.00');
    for (const n of OUTPUTS) {
      const answer = await ask(h.client(key), n);
      expect(answer.usage.output_tokens).toBe(n);
    }
    const meNow = await me('/api/v1/me');
    const myBudget = meNow.budgets.find((b: ApiJson) => b.scope === 'user' && b.period === 'month');
    expect(Number(myBudget.remaining_usd)).toBeLessThan(Number(remainingBefore));
    const myUsage = (await me('/api/v1/me/usage?by=day&since=30d')).items;
    const mySums = sums(myUsage);
    expect(mySums.requests).toBe(OUTPUTS.length);
    expect(mySums.output_tokens).toBe(OUTPUTS.reduce((a, b) => a + b, 0));
    expect(mySums.cost_micro_usd).toBeGreaterThan(0);

    // The member's settings page reflects it: the budget bar's words and the usage table's figures.
    await visit(mine, `${h.url}/settings`, 'My settings');
    const bar = mine.getByRole('img', { name: /^Me, per month:/ });
    await poll(() => bar.count()).toBe(1);
    const micro = (dollars: string) => Math.round(Number(dollars) * 1_000_000);
    expect(await bar.getAttribute('aria-label')).toBe(
      `Me, per month: ${usd(micro(myBudget.spent_usd))} spent, $0.00 reserved, ${usd(micro(myBudget.remaining_usd))} remaining of $25.00`,
    );
    // The page shows less than the whole budget remaining (the API's figure, as the page rounds it).
    expect(micro(myBudget.remaining_usd)).toBeLessThan(25_000_000 - 10_000);
    expect(await mine.getByText(/remaining of \$25\.00/).textContent()).not.toContain('$25.00 remaining');
    const myTable = mine.getByRole('table', { name: 'My cost per day' });
    await poll(() => myTable.count()).toBe(1);
    const dayRow = myTable.getByRole('row').filter({ hasText: String(myUsage[0].day) });
    expect(myUsage).toHaveLength(1);
    const cells = await dayRow.getByRole('cell').allTextContents();
    expect(cells[1]).toBe(String(OUTPUTS.length));
    expect(cells[2]).toBe(usd(myUsage[0].cost_micro_usd));
    expect(await mine.getByRole('img', { name: 'My cost per day, last 30 days' }).count()).toBe(1);
    await mine.screenshot({ path: '/tmp/walk-settings.png', fullPage: true });

    // 4. The admin's overview: totals and the member among the top users.
    const overview = (await h.api('GET', '/admin/v1/overview')).json;
    expect(overview.totals.requests).toBe(OUTPUTS.length);
    expect(overview.totals.output_tokens).toBe(mySums.output_tokens);
    await visit(page, `${h.url}/`, 'Overview');
    const topUsers = page.getByRole('table', { name: 'Top users, last 30 days' });
    const topMira = topUsers.getByRole('row').filter({ hasText: 'mira' });
    await poll(() => topMira.count()).toBe(1);
    expect(await topMira.getByRole('cell').allTextContents()).toEqual([
      'mira',
      String(OUTPUTS.length),
      usd(mySums.cost_micro_usd),
    ]);
    await page.screenshot({ path: '/tmp/walk-overview.png', fullPage: true });
    expect(overview.month.spent_micro_usd).toBe(mySums.cost_micro_usd);
    expect(await page.locator('section[aria-labelledby="mtd"] .stat').textContent()).toBe(
      usd(mySums.cost_micro_usd),
    );
    const tokensTable = page.getByRole('table', { name: 'Tokens by kind, last 30 days' });
    expect(
      await tokensTable.getByRole('row').filter({ hasText: 'Output' }).getByRole('cell').allTextContents(),
    ).toEqual(['Output', mySums.output_tokens.toLocaleString('en-US')]);

    // The usage explorer, by user and by model, and filtered by the member's team; each export's sums
    // equal the CLI's answer with the same filters.
    await visit(page, `${h.url}/usage`, 'Usage');
    const from = await page.getByLabel('From').inputValue();
    const to = await page.getByLabel('To (inclusive)').inputValue();
    const cases = [
      { by: 'User', team: undefined, cli: ['--by', 'user'] },
      { by: 'Model', team: undefined, cli: ['--by', 'model'] },
      { by: 'User', team: 'platform', cli: ['--by', 'user', '--team', 'platform'] },
    ];
    for (const c of cases) {
      await explore(page, c.by, c.team);
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: `/tmp/walk-usage-${c.by}-${c.team ?? 'all'}.png`, fullPage: true });
      const csv = await exportCsv(page);
      expect(csv.header[0]).toBe(c.by.toLowerCase());
      const cli = await remote(h, ['usage', ...c.cli, '--since', from, '--until', nextDay(to), '--json']);
      expect(cli.code, cli.stderr).toBe(0);
      const cliRows = JSON.parse(cli.stdout) as Array<Record<string, unknown>>;
      expect(sums(csv.records)).toEqual(sums(cliRows));
      expect(sums(csv.records)).toEqual(mySums);
      // The rows shown are the rows exported.
      const table = page.getByRole('table', { name: `Usage by ${c.by.toLowerCase()}` });
      expect(await table.locator('tbody tr').count()).toBe(csv.records.length);
      if (c.by === 'User') expect(csv.records.map((r) => r.user)).toEqual(['mira']);
      else expect(csv.records.map((r) => r.model)).toEqual(['claude-haiku-4-5']);
    }
    expect(new URL(page.url()).searchParams.get('team')).toBeTruthy();
    // Control for the team filter: a team without traffic shows nothing, and so does the CLI.
    await h.api('POST', '/admin/v1/teams', { body: { name: 'quiet' } });
    await page.reload({ waitUntil: 'networkidle' });
    await explore(page, 'User', 'quiet');
    await poll(() => page.getByText('No usage matches these filters.').count()).toBe(1);
    const quiet = await remote(h, ['usage', '--by', 'user', '--team', 'quiet', '--since', from, '--json']);
    expect(JSON.parse(quiet.stdout)).toEqual([]);

    // 5. The admin revokes the key on /keys; the next request with it is refused (the three above
    // succeeded with it: the control).
    await visit(page, `${h.url}/keys`, 'Gateway keys');
    const keyRow = page.getByRole('row').filter({ hasText: keyId });
    await poll(() => keyRow.count()).toBe(1);
    await keyRow.getByRole('button', { name: 'Revoke' }).click();
    const dialog = page.getByRole('dialog', { name: `Revoke ${keyId}?` });
    await poll(() => dialog.isVisible()).toBe(true);
    expect(await seriousViolations(page)).toEqual([]);
    await dialog.getByRole('button', { name: 'Revoke key' }).click();
    await poll(() => page.getByRole('row').filter({ hasText: keyId }).count()).toBe(0);
    expect((await h.api('GET', `/admin/v1/keys/${keyId}`)).json.status).toBe('revoked');
    await poll(() => statusOf(ask(h.client(key), 5))).toBe(401);

    // 6. Nothing went wrong in either browser: no dialog, no script error; only the member's
    // deliberate refused save (400) is in the console.
    expect(admin.dialogs).toEqual([]);
    expect(member.dialogs).toEqual([]);
    expect(admin.problems).toEqual([]);
    const refused = member.problems.filter((p) => /Failed to load resource: .* 400/.test(p));
    expect(refused).toHaveLength(1);
    expect(member.problems.filter((p) => !refused.includes(p))).toEqual([]);
    await member.context.close();
    await admin.context.close();
  }, 180_000);

  it("the explorer's CSV defuses a formula-like name and quotes its comma", async () => {
    // The API refuses such a team name (beside a plain one it accepts), so it is written into the row.
    expect((await h.api('POST', '/admin/v1/teams', { body: { name: '=cmd,1' } })).status).toBe(400);
    expect((await h.api('POST', '/admin/v1/teams', { body: { name: 'formula' } })).status).toBe(201);
    await ask(h.client(await h.key({ user: 'fran', team: 'formula' })), 3);
    await ask(h.client(await h.key({ user: 'paul', team: 'plain' })), 3);
    await sql`update teams set name = ${'=cmd,1'} where name = 'formula'`.execute(h.installation.db.kysely);
    await h.refresh();
    const { page, problems, dialogs, context } = await openPage(browser);
    await signInWithToken(page, h.url, h.adminToken);
    await visit(page, `${h.url}/usage?by=team`, 'Usage');
    await poll(() => page.getByRole('cell', { name: '=cmd,1', exact: true }).count()).toBe(1);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export CSV' }).click(),
    ]);
    const text = await readFile(await download.path(), 'utf8');
    const lines = text.split('\r\n');
    expect(lines[0]?.startsWith('team,requests,')).toBe(true);
    // The hostile cell: quoted (its comma stays inside) and starting with ' once unquoted.
    const hostile = lines.find((l) => l.includes('cmd'));
    expect(hostile?.startsWith(`"'=cmd,1",`)).toBe(true);
    expect(parseCsv(text).find((r) => r[0]?.includes('cmd'))?.[0]).toBe("'=cmd,1");
    // Control: a plain name is written as it is.
    expect(lines.some((l) => l.startsWith('plain,'))).toBe(true);
    expect(problems).toEqual([]);
    expect(dialogs).toEqual([]);
    await context.close();
  }, 90_000);
});
