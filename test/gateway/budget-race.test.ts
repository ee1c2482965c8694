// Budgets never overspend: N concurrent requests against a budget worth exactly K requests admit at
// most K; sequential requests then continue until what is left cannot cover one more worst case.
// Holds for key, user, team and org budgets, and the fake upstream's record agrees with the ledger.
import Anthropic from '@anthropic-ai/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import type { Services } from '../../src/services.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

const MODEL = 'claude-haiku-4-5';
const PARAMS = {
  model: MODEL,
  max_tokens: 40,
  messages: [{ role: 'user' as const, content: 'race [[fake output_tokens=40]]' }],
};

async function ledger(h: Harness) {
  return h.installation.db.kysely
    .selectFrom('usage_records')
    .selectAll()
    .where('endpoint', '=', 'messages')
    .execute();
}

/** Cost of one request at its actual usage, measured with a first request outside any budget. */
async function unitCost(h: Harness, key: string): Promise<number> {
  await h.client(key).messages.create(PARAMS);
  const row = (await ledger(h)).at(-1);
  if (!row) throw new Error('no usage row');
  return row.cost_micro;
}

type Scope = 'key' | 'user' | 'team' | 'org' | 'mixed';

async function budgetedKey(h: Harness, scope: Scope, limit: number): Promise<string> {
  const admin = h.admin;
  const s: Services = h.services;
  const team = `t-${scope}`;
  // 'mixed': every scope has a budget; the team's is the tightest, the others are larger.
  const mixed = scope === 'mixed';
  await s.teams.add(admin, { name: team, monthlyBudgetMicro: scope === 'team' || mixed ? limit : null });
  await s.users.add(admin, {
    name: `u-${scope}`,
    team,
    monthlyBudgetMicro: scope === 'user' ? limit : mixed ? 2 * limit : null,
  });
  const policy = {
    monthlyBudgetMicro: scope === 'key' ? limit : mixed ? 3 * limit : null,
    dailyBudgetMicro: mixed ? 2 * limit : null,
  };
  const issued = await s.keys.issue(admin, { user: `u-${scope}`, policy });
  return issued.key;
}

describe.each<Scope>(['key', 'user', 'team', 'org', 'mixed'])('budget race on the %s scope', (scope) => {
  let h: Harness;
  afterEach(() => h.close());

  it('admits at most K of 200 concurrent requests, then fills the budget to within one worst case', async () => {
    const K = 25;
    // Measure the unit cost on a throw-away installation so the org budget starts from zero here.
    const probe = await startHarness();
    await probe.orgCredential();
    const unit = await unitCost(probe, await probe.key());
    await probe.close();
    const budget = K * unit;

    const orgCap = scope === 'org' ? budget : scope === 'mixed' ? 4 * budget : null;
    h = await startHarness({
      env: orgCap === null ? {} : { TOLLGATE_CLAUDE_MAX_MONTHLY_SPEND_USD: (orgCap / 1e6).toFixed(6) },
    });
    await h.orgCredential();
    const key = await budgetedKey(h, scope, budget);
    const client = h.client(key);

    const results = await Promise.allSettled(
      Array.from({ length: 200 }, () => client.messages.create(PARAMS)),
    );
    const admitted = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r) => r.status === 'rejected');
    expect(admitted).toBeGreaterThan(0);
    expect(admitted).toBeLessThanOrEqual(K);
    for (const r of refused) {
      const error = (r as PromiseRejectedResult).reason as InstanceType<typeof Anthropic.RateLimitError>;
      expect(error).toBeInstanceOf(Anthropic.RateLimitError);
      expect(error.headers?.get('x-should-retry')).toBe('false');
      expect(
        (error.error as { error?: { details?: { error_code?: string } } }).error?.details?.error_code,
      ).toBe('enforced_spend_limit_reached');
    }

    // Sequentially, until the first refusal.
    let sequential = 0;
    for (let i = 0; i < 3 * K; i++) {
      try {
        await client.messages.create(PARAMS);
        sequential++;
      } catch (error) {
        expect(error).toBeInstanceOf(Anthropic.RateLimitError);
        expect(String(error)).toMatch(/resets at \d{4}-\d{2}-01T00:00:00\.000Z/);
        break;
      }
    }
    const rows = (await ledger(h)).filter((r) => r.status === 200);
    const spent = rows.reduce((sum, r) => sum + r.cost_micro, 0);
    const worst = (await import('../../src/pricing/cost.js')).worstCaseMicro;
    const { createPriceBook } = await import('../../src/pricing/models.js');
    const { inputTokenUpperBound } = await import('../../src/pricing/input-bound.js');
    const price = createPriceBook({}).lookup(MODEL);
    if (!price) throw new Error('unpriced');
    const bound = inputTokenUpperBound(PARAMS, {
      imageTokenAllowance: 1600,
      documentTokenAllowance: 200_000,
    });
    if ('unbounded' in bound) throw new Error('unbounded');
    const worstCase = worst(price, {
      inputTokensUpperBound: bound.tokens,
      maxOutputTokens: PARAMS.max_tokens,
      webSearchUses: 0,
      cacheWrite1hPossible: false,
    });

    expect(rows).toHaveLength(admitted + sequential);
    expect(spent).toBeLessThanOrEqual(budget);
    expect(spent).toBeGreaterThanOrEqual(budget - worstCase);
    expect(admitted + sequential).toBe(Math.floor(spent / unit));

    // The upstream served exactly what the ledger recorded, token for token.
    const served = h.fake.served.filter((s) => s.path === '/v1/messages' && s.status === 200);
    expect(served).toHaveLength(rows.length);
    const sum = (
      f: (x: { input: number; output: number }) => number,
      xs: Array<{ input: number; output: number }>,
    ) => xs.reduce((a, x) => a + f(x), 0);
    const fromFake = served.map((s) => ({
      input: s.usage?.input_tokens ?? 0,
      output: s.usage?.output_tokens ?? 0,
    }));
    const fromLedger = rows.map((r) => ({ input: r.input_tokens, output: r.output_tokens }));
    expect(sum((x) => x.input, fromLedger)).toBe(sum((x) => x.input, fromFake));
    expect(sum((x) => x.output, fromLedger)).toBe(sum((x) => x.output, fromFake));
  });
});
