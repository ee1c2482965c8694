// What one ledger commit writes: the records and the spend they add per scope and UTC day. Pure.
// Only daily spend rows are kept: a month's or all-time spend is the sum of its days, so a record
// touches one row per scope instead of three.
import { periodStart } from '../budgets/periods.js';
import type { BudgetPeriod, BudgetScope, UsageRecordTable } from '../db/schema.js';

export interface SpendDelta {
  scope_type: BudgetScope;
  scope_id: string;
  period: BudgetPeriod;
  period_start: number;
  spent_micro: number;
}

export interface LedgerBatch {
  records: UsageRecordTable[];
  spend: SpendDelta[];
}

export function buildBatch(records: readonly UsageRecordTable[], orgId: string): LedgerBatch {
  const spend = new Map<string, SpendDelta>();
  for (const record of records) {
    if (record.cost_micro === 0) continue;
    const start = periodStart('day', record.at);
    add(spend, 'key', record.key_id, start, record.cost_micro);
    add(spend, 'user', record.user_id, start, record.cost_micro);
    if (record.team_id !== null) add(spend, 'team', record.team_id, start, record.cost_micro);
    add(spend, 'org', orgId, start, record.cost_micro);
  }
  return { records: [...records], spend: [...spend.values()] };
}

function add(
  spend: Map<string, SpendDelta>,
  scope: BudgetScope,
  id: string,
  start: number,
  cost: number,
): void {
  const key = `${scope}|${id}|${start}`;
  const row = spend.get(key);
  if (row) row.spent_micro += cost;
  else
    spend.set(key, {
      scope_type: scope,
      scope_id: id,
      period: 'day',
      period_start: start,
      spent_micro: cost,
    });
}
