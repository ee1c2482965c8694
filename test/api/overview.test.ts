// The overview (GET /admin/v1/overview) against a real gateway: its totals, its days and its top lists
// are the ledger's figures (the same as /admin/v1/usage, which `tollgate usage --json` prints); team
// budgets and the org cap show what the budget API shows; alerts name budgets near their limit,
// credentials marked invalid and keys past the age policy — each beside the state without it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiJson, Harness } from '../helpers/gateway.js';
import { startHarness } from '../helpers/gateway.js';

const DAY = 86_400_000;
const params = (out: number) => ({
  model: 'claude-haiku-4-5',
  max_tokens: 40,
  messages: [{ role: 'user' as const, content: `hello [[fake output_tokens=${out}]]` }],
});

describe('the overview', () => {
  let h: Harness;
  let now = Date.now();
  let keyA: string;
  let keyB: string;

  beforeAll(async () => {
    h = await startHarness({
      clock: () => now,
      yaml: 'claude: { max_monthly_spend_usd: 500 }\nusage: { timezone: Asia/Kathmandu }\n',
    });
    await h.orgCredential();
    await h.services.teams.add(h.admin, { name: 'core' });
    keyA = await h.key({ user: 'ann', team: 'core' });
    keyB = await h.key({ user: 'bob' });
    for (let i = 0; i < 3; i++) await h.client(keyA).messages.create(params(20));
    await h.client(keyB).messages.create(params(5));
    await h.gateway.deps.ledger.drain();
    expect(
      (
        await h.api('PUT', '/admin/v1/budgets', {
          body: { scope: 'team', target: 'core', period: 'month', limit_usd: '1000' },
        })
      ).status,
    ).toBe(200);
  });
  afterAll(() => h.close());

  async function overview(): Promise<ApiJson> {
    const r = await h.api('GET', '/admin/v1/overview');
    expect(r.status).toBe(200);
    return r.json;
  }

  it('totals, days and top lists are the ledger figures, days cut in usage.timezone', async () => {
    const o = await overview();
    expect(o.timezone).toBe('Asia/Kathmandu');
    expect(o.days).toHaveLength(30);
    const usage = await h.api('GET', '/admin/v1/usage?by=user&since=30d');
    const cost = usage.json.items.reduce((n: number, r: ApiJson) => n + r.cost_micro_usd, 0);
    expect(cost).toBeGreaterThan(0);
    expect(o.totals.cost_micro).toBe(cost);
    expect(o.totals.requests).toBe(4);
    const perDay = o.by_model
      .flatMap((m: ApiJson) => m.cost_micro_usd)
      .reduce((a: number, b: number) => a + b, 0);
    expect(perDay).toBe(cost);
    // Today's column (the last) holds it all.
    expect(o.by_model[0].model).toBe('claude-haiku-4-5');
    expect(o.by_model[0].cost_micro_usd.at(-1)).toBe(cost);
    expect(o.top_users.map((u: ApiJson) => u.name)).toEqual(['ann', 'bob']);
    expect(o.top_users[0].requests).toBe(3);
    expect(o.top_keys[0].user).toBe('ann');
    // The month: the org cap from the config, the team's budget with its spend.
    expect(o.month.org_cap.limit_micro_usd).toBe(500_000_000);
    expect(o.month.spent_micro_usd).toBe(cost);
    expect(o.month.teams).toHaveLength(1);
    expect(o.month.teams[0].name).toBe('core');
    const annCost = o.top_users[0].cost_micro;
    expect(o.month.teams[0].spent_micro_usd).toBe(annCost);
    expect(o.alerts).toEqual([]);
    // Every budget line is what the budget API says of the same budget (one grouped query there,
    // one lookup per budget here: the same figures).
    const budgets = (await h.api('GET', '/admin/v1/budgets')).json.items;
    const micro = (usd: string) => Math.round(Number(usd) * 1_000_000);
    for (const line of [o.month.org_cap, ...o.month.teams]) {
      const same = budgets.find((b: ApiJson) => b.target_id === line.id && b.period === line.period);
      expect(micro(same.spent_usd)).toBe(line.spent_micro_usd);
      expect(micro(same.limit_usd)).toBe(line.limit_micro_usd);
    }
  });

  it('alerts: a budget near its limit, an invalid credential, a key past the age policy', async () => {
    const spentByBob = (await overview()).top_users.find((u: ApiJson) => u.name === 'bob').cost_micro;
    // Bob's budget: just above what he spent (>= 80% used) → near.
    const limit = (spentByBob / 1_000_000) * 1.1;
    expect(
      (
        await h.api('PUT', '/admin/v1/budgets', {
          body: { scope: 'user', target: 'bob', period: 'month', limit_usd: limit.toFixed(6) },
        })
      ).status,
    ).toBe(200);
    // And Ann's, far above: no alert (the control).
    expect(
      (
        await h.api('PUT', '/admin/v1/budgets', {
          body: { scope: 'user', target: 'ann', period: 'month', limit_usd: '100' },
        })
      ).status,
    ).toBe(200);
    let o = await overview();
    expect(o.alerts.map((a: ApiJson) => [a.kind, a.object.name])).toEqual([['budget', 'bob']]);
    expect(o.alerts[0].severity).toBe('warning');

    await h.installation.db.kysely.updateTable('credentials').set({ status: 'invalid' }).execute();
    o = await overview();
    expect(o.alerts.map((a: ApiJson) => a.kind).sort()).toEqual(['budget', 'credential']);

    now += 91 * DAY;
    o = await overview();
    const aged = o.alerts.filter((a: ApiJson) => a.kind === 'key_age').map((a: ApiJson) => a.object.id);
    expect(aged).toHaveLength(2);
    // 91 days later, the 30 days hold no usage.
    expect(o.totals.requests).toBe(0);
    expect(o.top_users).toEqual([]);
    void keyA;
    void keyB;
  });
});
