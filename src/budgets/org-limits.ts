// The organisation's budget limits as the gateway enforces them: the org rows of `budgets` (set with
// `tollgate budget` or the admin API), except that claude.max_monthly_spend_usd, when configured, is the
// monthly limit whatever the table says (product.md §3: the config file is authoritative for it).
import type { BudgetPeriod } from '../db/schema.js';
import type { Tx } from '../db/tx.js';

export type OrgLimits = Readonly<Partial<Record<BudgetPeriod, number>>>;

/** A fresh, frozen limits object (the gateway swaps it in whole; requests never see a half-built one). */
export async function loadOrgLimits(
  db: Tx,
  orgId: string,
  configCapMicro: number | null,
): Promise<OrgLimits> {
  const rows = await db
    .selectFrom('budgets')
    .select(['period', 'limit_micro'])
    .where('scope_type', '=', 'org')
    .where('scope_id', '=', orgId)
    .execute();
  const limits: Partial<Record<BudgetPeriod, number>> = {};
  for (const r of rows) limits[r.period] = Number(r.limit_micro);
  if (configCapMicro !== null) limits.month = configCapMicro;
  return Object.freeze(limits);
}
