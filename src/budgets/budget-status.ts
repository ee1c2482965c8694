// What a budget stands at now, for a reader outside the request path (the self-service API): the limit,
// spent and reserved as the gateway counts them — its book's figures when it holds the scope, else
// the settled spend from the database (summed per UTC day, a key scope over its whole lineage).
import type { Db } from '../db/connect.js';
import type { BudgetPeriod, BudgetScope } from '../db/schema.js';
import { budgetsOf } from './budget.repo.js';
import { PERIODS, periodEnd, periodStart } from './periods.js';
import { loadSpend } from './spend.js';

export interface BudgetFigures {
  scope: BudgetScope;
  id: string;
  period: BudgetPeriod;
  limitMicro: number;
  spentMicro: number;
  reservedMicro: number;
  remainingMicro: number;
  resetsAt: number | null;
}

/** The gateway's live figures of one scope and period, or null when it holds none (see BudgetReader). */
export type LiveFigures = (
  scope: BudgetScope,
  id: string,
  period: BudgetPeriod,
) => { spent: number; reserved: number } | null;

/** Settled spend of a scope in the period containing `now` (the gateway's own loader, so both agree). */
export function settledSpend(db: Db, scope: BudgetScope, id: string, period: BudgetPeriod, now: number) {
  return loadSpend(db.kysely, scope, id, period, periodStart(period, now));
}

/**
 * Where one budget stands now: the serving process's book when it holds the scope (it knows in-flight
 * reservations and spend not yet flushed), else the settled spend and nothing reserved.
 */
export async function standing(
  db: Db,
  live: LiveFigures | null,
  scope: BudgetScope,
  id: string,
  period: BudgetPeriod,
  limitMicro: number,
  now: number,
): Promise<Omit<BudgetFigures, 'scope' | 'id' | 'period'>> {
  const held = live?.(scope, id, period) ?? null;
  const spentMicro = held ? held.spent : await settledSpend(db, scope, id, period, now);
  const reservedMicro = held ? held.reserved : 0;
  return {
    limitMicro,
    spentMicro,
    reservedMicro,
    remainingMicro: Math.max(0, limitMicro - spentMicro - reservedMicro),
    resetsAt: period === 'total' ? null : periodEnd(period, now),
  };
}

/**
 * Figures for every period of one scope that has a limit. `extraLimits` are limits from configuration
 * (the org's monthly cap): they win over a stored row of the same period, as the gateway enforces them.
 */
export async function budgetFigures(
  db: Db,
  live: LiveFigures | null,
  scope: BudgetScope,
  id: string,
  now: number,
  extraLimits: Partial<Record<BudgetPeriod, number>> = {},
): Promise<BudgetFigures[]> {
  const limits = new Map<BudgetPeriod, number>();
  for (const b of await budgetsOf(db.kysely, scope, id)) limits.set(b.period, b.limitMicro);
  for (const period of PERIODS) {
    const extra = extraLimits[period];
    if (extra !== undefined) limits.set(period, extra);
  }
  const out: BudgetFigures[] = [];
  for (const period of PERIODS) {
    const limitMicro = limits.get(period);
    if (limitMicro === undefined) continue;
    out.push({ scope, id, period, ...(await standing(db, live, scope, id, period, limitMicro, now)) });
  }
  return out;
}
