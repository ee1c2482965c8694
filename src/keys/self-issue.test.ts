// The ceiling rule on its own: values left out take the ceiling's, values within it are kept, and the
// first value beyond it is refused naming the field; act-for-users never passes, whatever the ceiling.
import { describe, expect, it } from 'vitest';
import { isAppError } from '../lib/errors.js';
import { defaultCeiling, withinCeiling } from './self-issue.js';

const DAY = 86_400_000;
const limits = { userMonthlyMicro: null, maxAgeMs: 90 * DAY };

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (isAppError(error) && error.code === 'forbidden') return error.message;
    throw error;
  }
  throw new Error('not refused');
}

describe('withinCeiling', () => {
  it('gives an empty ask the default ceiling: inference and self-service, the installation models, the key age', () => {
    const { policy, expiresInMs } = withinCeiling({}, defaultCeiling(['claude-haiku-4-5']), limits);
    expect(policy.scopes).toEqual(['inference', 'self-service']);
    expect(policy.models).toEqual(['claude-haiku-4-5']);
    expect(policy.tools).toBeNull();
    expect(expiresInMs).toBe(90 * DAY);
    // An empty models_allowed is every priced model: no list on the key.
    expect(withinCeiling({}, defaultCeiling([]), limits).policy.models).toBeNull();
  });

  it('keeps values within and refuses values beyond, naming the field and the ceiling value', () => {
    const ceiling = defaultCeiling(['claude-haiku-4-5']);
    expect(withinCeiling({ models: ['claude-haiku-4-5-20251001'] }, ceiling, limits).policy.models).toEqual([
      'claude-haiku-4-5-20251001',
    ]);
    expect(refusal(() => withinCeiling({ models: ['claude-opus-4-1'] }, ceiling, limits))).toBe(
      'models is beyond your key ceiling (the default ceiling: claude-haiku-4-5)',
    );
    expect(withinCeiling({ expiresInMs: DAY }, ceiling, limits).expiresInMs).toBe(DAY);
    expect(refusal(() => withinCeiling({ expiresInMs: 91 * DAY }, ceiling, limits))).toMatch(/expires .*90d/);
  });

  it('never self-issues act-for-users, even from a profile that has it', () => {
    const ceiling = defaultCeiling([]);
    const wide = {
      label: 'profile svc',
      policy: { ...ceiling.policy, scopes: ['inference' as const, 'act-for-users' as const] },
    };
    expect(withinCeiling({}, wide, limits).policy.scopes).toEqual(['inference']);
    expect(refusal(() => withinCeiling({ scopes: ['act-for-users'] }, wide, limits))).toMatch(
      /never self-issued/,
    );
  });

  it('bounds budgets by the person’s own monthly budget', () => {
    const own = { ...limits, userMonthlyMicro: 5_000_000 };
    expect(
      withinCeiling({ monthlyBudgetMicro: 5_000_000 }, defaultCeiling([]), own).policy.monthlyBudgetMicro,
    ).toBe(5_000_000);
    expect(refusal(() => withinCeiling({ dailyBudgetMicro: 5_000_001 }, defaultCeiling([]), own))).toMatch(
      /daily_budget_usd .*own monthly budget/,
    );
  });
});
