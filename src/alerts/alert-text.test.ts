import { describe, expect, it } from 'vitest';
import { budgetAlert, crossedThresholds, webhookBody } from './alert-text.js';

describe('crossedThresholds', () => {
  const T = [0.5, 0.8, 1];
  it('counts a threshold from exactly threshold × limit, without floating-point drift', () => {
    expect(crossedThresholds(499_999, 1_000_000, T)).toEqual([]);
    expect(crossedThresholds(500_000, 1_000_000, T)).toEqual([0.5]);
    expect(crossedThresholds(799_999, 1_000_000, T)).toEqual([0.5]);
    expect(crossedThresholds(800_000, 1_000_000, T)).toEqual([0.5, 0.8]);
    expect(crossedThresholds(1_000_000, 1_000_000, T)).toEqual(T);
    // 0.7 × 10 is 7.000000000000001 in floating point; 7 of 10 is exactly 70 %.
    expect(crossedThresholds(7, 10, [0.7])).toEqual([0.7]);
    expect(crossedThresholds(6, 10, [0.7])).toEqual([]);
  });
  it('a zero limit or nothing spent crosses nothing', () => {
    expect(crossedThresholds(5, 0, T)).toEqual([]);
    expect(crossedThresholds(0, 10, T)).toEqual([]);
  });
});

describe('budget alert text and body', () => {
  const crossing = {
    scope: 'team' as const,
    id: 'tm_1',
    name: '<platform> & co',
    period: 'day' as const,
    periodStart: Date.UTC(2026, 11, 6),
    threshold: 0.8,
    limitMicro: 10_000_000,
    spentMicro: 8_123_456,
  };
  it('one condition per scope, period start and threshold; Slack text escaped; structured fields', () => {
    const alert = budgetAlert(crossing);
    expect(alert.condition).toBe(`budget:team:tm_1:day:${Date.UTC(2026, 11, 6)}:0.8`);
    const body = JSON.parse(webhookBody(alert, 'alr_x', Date.UTC(2026, 11, 6, 9)));
    expect(body).toEqual({
      text: 'Tollgate: team &lt;platform&gt; &amp; co reached 80% of its daily budget ($8.123456 of $10.00, day from 2026-12-06)',
      alert_id: 'alr_x',
      kind: 'budget',
      raised_at: '2026-12-06T09:00:00.000Z',
      scope: 'team',
      id: 'tm_1',
      name: '<platform> & co',
      period: 'day',
      period_start: '2026-12-06T00:00:00.000Z',
      threshold: 0.8,
      limit_usd: '10.00',
      limit_micro_usd: 10_000_000,
      spent_usd: '8.123456',
      spent_micro_usd: 8_123_456,
    });
    expect(budgetAlert({ ...crossing, periodStart: Date.UTC(2026, 11, 7) }).condition).not.toBe(
      alert.condition,
    );
    expect(budgetAlert({ ...crossing, scope: 'org', name: null, threshold: 1 }).message).toMatch(
      /^Tollgate: the organisation has used its whole daily budget/,
    );
  });
});
