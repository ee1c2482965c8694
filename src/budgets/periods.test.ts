import { describe, expect, it } from 'vitest';
import { periodEnd, periodStart } from './periods.js';

describe('budget periods (UTC)', () => {
  const t = Date.UTC(2026, 10, 22, 23, 59, 59, 999); // 2026-11-22T23:59:59.999Z

  it('starts days and months at UTC midnight', () => {
    expect(new Date(periodStart('day', t)).toISOString()).toBe('2026-11-22T00:00:00.000Z');
    expect(new Date(periodStart('month', t)).toISOString()).toBe('2026-11-01T00:00:00.000Z');
    expect(periodStart('total', t)).toBe(0);
  });

  it('ends them at the next reset, across month and year boundaries', () => {
    expect(new Date(periodEnd('day', t) ?? 0).toISOString()).toBe('2026-11-23T00:00:00.000Z');
    expect(new Date(periodEnd('month', Date.UTC(2026, 11, 31, 12)) ?? 0).toISOString()).toBe(
      '2027-01-01T00:00:00.000Z',
    );
    expect(new Date(periodEnd('day', Date.UTC(2028, 1, 28, 12)) ?? 0).toISOString()).toBe(
      '2028-02-29T00:00:00.000Z',
    );
    expect(periodEnd('total', t)).toBeNull();
  });

  it('puts the reset instant in the next period', () => {
    const midnight = Date.UTC(2026, 10, 23);
    expect(periodStart('day', midnight)).toBe(midnight);
    expect(periodStart('day', midnight - 1)).toBe(Date.UTC(2026, 10, 22));
  });
});
