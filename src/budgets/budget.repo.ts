// Budget limits per scope and period. Spend tracking and enforcement live in the gateway.

import type { BudgetPeriod, BudgetScope } from '../db/schema.js';
import type { Tx } from '../db/tx.js';

export interface BudgetLimit {
  period: BudgetPeriod;
  limitMicro: number;
}

/** Sets (or with null removes) the limit of one scope and period. */
export async function setBudget(
  tx: Tx,
  scope: BudgetScope,
  scopeId: string,
  period: BudgetPeriod,
  limitMicro: number | null,
  at: number,
): Promise<void> {
  if (limitMicro === null) {
    await tx
      .deleteFrom('budgets')
      .where('scope_type', '=', scope)
      .where('scope_id', '=', scopeId)
      .where('period', '=', period)
      .execute();
    return;
  }
  await tx
    .insertInto('budgets')
    .values({ scope_type: scope, scope_id: scopeId, period, limit_micro: limitMicro, updated_at: at })
    .onConflict((oc) =>
      oc
        .columns(['scope_type', 'scope_id', 'period'])
        .doUpdateSet({ limit_micro: limitMicro, updated_at: at }),
    )
    .execute();
}

export async function budgetsOf(tx: Tx, scope: BudgetScope, scopeId: string): Promise<BudgetLimit[]> {
  const rows = await tx
    .selectFrom('budgets')
    .select(['period', 'limit_micro'])
    .where('scope_type', '=', scope)
    .where('scope_id', '=', scopeId)
    .orderBy('period')
    .execute();
  return rows.map((r) => ({ period: r.period, limitMicro: r.limit_micro }));
}
