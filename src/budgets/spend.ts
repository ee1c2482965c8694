// Settled spend of a budget scope, read from the `spend` table. One function for the gateway's budget
// book (which loads a counter the first time a scope is used) and for the budgets API (which reports
// it), so what is enforced and what is shown are the same figure.
import type { BudgetPeriod, BudgetScope } from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import { periodEnd } from './periods.js';

/**
 * Spent micro-USD of one scope in the period starting at `start`. Spend is stored per scope and UTC
 * day; a month's or all-time spend is the sum of its days. The key scope is a lineage (a key and its
 * rotations, `id` being the lineage id): its spend is that of every key in it, as recorded per key
 * (usage still names the key that served each request).
 */
export async function loadSpend(
  db: Tx,
  scope: BudgetScope,
  id: string,
  period: BudgetPeriod,
  start: number,
): Promise<number> {
  let query = db
    .selectFrom('spend')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('spent_micro'), eb.lit(0)).as('spent'))
    .where('scope_type', '=', scope)
    .where('period', '=', 'day');
  query =
    scope === 'key'
      ? query.where('scope_id', 'in', (eb) =>
          eb.selectFrom('gateway_keys').select('gateway_keys.id').where('gateway_keys.lineage_id', '=', id),
        )
      : query.where('scope_id', '=', id);
  if (period !== 'total') {
    query = query
      .where('period_start', '>=', start)
      .where('period_start', '<', periodEnd(period, start) ?? start);
  }
  const row = await query.executeTakeFirst();
  return Number(row?.spent ?? 0);
}
