// What a budget refusal tells whom (product.md §6): a member sees what remains of every scope that
// applies to them, spent and limit only for their own key and their own user budget; team and org
// spent and limits are for admins.
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatUsd } from '../../src/lib/money.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

/** Fits every budget below (worst case a few hundred micro-USD). */
const SMALL = {
  model: 'claude-haiku-4-5',
  max_tokens: 5,
  messages: [{ role: 'user' as const, content: 'hi' }],
};
/** Worst case 2,000 output tokens at $15/M = $0.03: over every budget below. */
const LARGE = { ...SMALL, model: 'claude-sonnet-4-6', max_tokens: 2000 };
const LIMIT = 5_000; // $0.005

type ApiError = InstanceType<typeof Anthropic.APIError>;

async function refusal(h: Harness, key: string): Promise<{ message: string; details: unknown }> {
  const error = (await h
    .client(key)
    .messages.create(LARGE)
    .catch((e: unknown) => e)) as ApiError;
  expect(error).toBeInstanceOf(Anthropic.RateLimitError);
  const body = error.error as { error: { message: string; details?: unknown } };
  expect(body.error.details).toMatchObject({ error_code: 'enforced_spend_limit_reached' });
  return { message: body.error.message, details: body.error.details };
}

/** Spent so far in the scope (the ledger's sum: one small request was made first). */
async function spent(h: Harness): Promise<number> {
  const rows = await h.installation.db.kysely.selectFrom('usage_records').select('cost_micro').execute();
  return rows.reduce((sum, r) => sum + r.cost_micro, 0);
}

function expectFigures(message: string, spentMicro: number) {
  expect(message).toContain(`($${formatUsd(LIMIT)})`);
  expect(message).toContain(`($${formatUsd(spentMicro)} spent or reserved)`);
}

function expectRemainingOnly(message: string, spentMicro: number) {
  expect(message).toContain(`($${formatUsd(LIMIT - spentMicro)} remaining)`);
  expect(message).not.toContain(`$${formatUsd(LIMIT)}`);
  expect(message).not.toContain('spent');
}

describe('budget refusals on team, key and user budgets', () => {
  let h: Harness;
  let member: string;
  let admin: string;

  beforeAll(async () => {
    h = await startHarness();
    await h.orgCredential();
    await h.services.teams.add(h.admin, { name: 'eng', monthlyBudgetMicro: LIMIT });
    await h.services.users.add(h.admin, { name: 'mia', team: 'eng', monthlyBudgetMicro: null });
    await h.services.users.add(h.admin, {
      name: 'ada',
      team: 'eng',
      role: 'admin',
      monthlyBudgetMicro: null,
    });
    member = await h.key({ user: 'mia' });
    admin = await h.key({ user: 'ada' });
    await h.client(member).messages.create(SMALL);
  });
  afterAll(() => h.close());

  it("a member refused by the team budget sees what remains, not the team's spent or limit", async () => {
    const used = await spent(h);
    expect(used).toBeGreaterThan(0);
    const { message } = await refusal(h, member);
    expect(message).toContain('team eng');
    expectRemainingOnly(message, used);
  });

  it('an admin refused by the same team budget sees its spent and limit', async () => {
    const { message } = await refusal(h, admin);
    expect(message).toContain('team eng');
    expectFigures(message, await spent(h));
  });

  it("a member refused by their own key's budget sees its spent and limit (positive control)", async () => {
    await h.services.users.add(h.admin, { name: 'kim', team: null, monthlyBudgetMicro: null });
    const own = await h.key({ user: 'kim', policy: { monthlyBudgetMicro: LIMIT } });
    const before = await spent(h);
    await h.client(own).messages.create(SMALL);
    const { message } = await refusal(h, own);
    expect(message).toMatch(/budget of key key_/);
    expectFigures(message, (await spent(h)) - before);
  });

  it('a member refused by their own user budget sees its spent and limit (positive control)', async () => {
    await h.services.users.add(h.admin, { name: 'lee', team: null, monthlyBudgetMicro: LIMIT });
    const own = await h.key({ user: 'lee' });
    const before = await spent(h);
    await h.client(own).messages.create(SMALL);
    const { message } = await refusal(h, own);
    expect(message).toContain('user lee');
    expectFigures(message, (await spent(h)) - before);
  });
});

describe('budget refusals on the org budget', () => {
  let h: Harness;
  let member: string;
  let admin: string;

  beforeAll(async () => {
    h = await startHarness({ env: { TOLLGATE_CLAUDE_MAX_MONTHLY_SPEND_USD: formatUsd(LIMIT) } });
    await h.orgCredential();
    await h.services.users.add(h.admin, { name: 'mia', team: null, monthlyBudgetMicro: null });
    await h.services.users.add(h.admin, { name: 'ada', team: null, role: 'admin', monthlyBudgetMicro: null });
    member = await h.key({ user: 'mia' });
    admin = await h.key({ user: 'ada' });
    await h.client(member).messages.create(SMALL);
  });
  afterAll(() => h.close());

  it("a member sees what remains of the org budget, not the org's spent or limit", async () => {
    const { message } = await refusal(h, member);
    expect(message).toContain('the organisation');
    expectRemainingOnly(message, await spent(h));
  });

  it('an admin sees the org budget spent and limit', async () => {
    const { message } = await refusal(h, admin);
    expect(message).toContain('the organisation');
    expectFigures(message, await spent(h));
  });
});
