// UTC calendar periods of budgets: the start of the period containing `now`, and when it resets.
import type { BudgetPeriod } from '../db/schema.js';

export const PERIODS: readonly BudgetPeriod[] = ['day', 'month', 'total'];

/** Start (epoch ms, UTC) of the period that contains `now`; `total` starts at 0. */
export function periodStart(period: BudgetPeriod, now: number): number {
  if (period === 'total') return 0;
  // Every request asks several times; the answer changes once a day, so the last day is remembered.
  if (now < cached.dayStart || now >= cached.dayEnd) {
    const d = new Date(now);
    cached.dayStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    cached.dayEnd = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
    cached.monthStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
  return period === 'day' ? cached.dayStart : cached.monthStart;
}

const cached = { dayStart: 0, dayEnd: 0, monthStart: 0 };

/** When the period containing `now` ends (the next reset), or null for `total`. */
export function periodEnd(period: BudgetPeriod, now: number): number | null {
  if (period === 'total') return null;
  const d = new Date(now);
  if (period === 'day') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}
