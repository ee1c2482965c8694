import { describe, expect, it } from 'vitest';
import { microToCents, planLimits } from './spend-limit-plan.js';
import type { SpendLimit } from './spend-limits.client.js';

const limit = (
  scope: SpendLimit['scope'],
  amount: string | null,
  period: SpendLimit['period'] = 'monthly',
): SpendLimit => ({
  type: 'spend_limit',
  id: `spl_${scope.type === 'organization' ? 'org' : scope.workspace_id}_${period}`,
  amount,
  currency: 'USD',
  period,
  scope,
  is_enabled: true,
  created_at: '2026-12-01T00:00:00Z',
});

describe('microToCents', () => {
  it('rounds down to whole cents, as an integer string', () => {
    expect(microToCents(500_000_000)).toBe('50000');
    expect(microToCents(123_456_789)).toBe('12345');
    expect(microToCents(9_999)).toBe('0');
    expect(microToCents(10_000)).toBe('1');
    expect(microToCents(0)).toBe('0');
  });
  it('refuses what is not a micro-USD amount', () => {
    expect(() => microToCents(-1)).toThrow(RangeError);
    expect(() => microToCents(1.5)).toThrow(RangeError);
  });
});

describe('planLimits', () => {
  const org = { scope: { type: 'organization' as const }, team: null, limitMicro: 500_000_000 };
  const team = {
    scope: { type: 'workspace' as const, workspace_id: 'wrkspc_a' },
    team: 'a',
    limitMicro: 10_000_000,
  };

  it('creates what Anthropic lacks, updates what differs, leaves what matches', () => {
    const rows = planLimits([org, team], [limit({ type: 'organization' }, '50000')]);
    expect(rows.map((r) => [r.action, r.current, r.wanted, r.differenceCents])).toEqual([
      ['none', '50000', '50000', 0],
      ['create', undefined, '1000', null],
    ]);
    const changed = planLimits([team], [limit({ type: 'workspace', workspace_id: 'wrkspc_a' }, '1500')]);
    expect(changed.map((r) => [r.action, r.differenceCents])).toEqual([['update', -500]]);
  });

  it('replaces an explicit no-limit with the budget, and compares monthly limits only', () => {
    expect(planLimits([org], [limit({ type: 'organization' }, null)])[0]?.action).toBe('update');
    const rows = planLimits([org], [limit({ type: 'organization' }, '50000', 'daily')]);
    expect(rows.map((r) => r.action)).toEqual(['create']);
  });

  it('lists limits Tollgate has no budget for as unmanaged (never cleared)', () => {
    const rows = planLimits([], [limit({ type: 'workspace', workspace_id: 'wrkspc_z' }, '999')]);
    expect(rows).toEqual([expect.objectContaining({ action: 'unmanaged', current: '999', wanted: null })]);
  });
});
