// What one ledger commit writes: the records, the spend they add per scope and period, and the
// last-use times of the keys and credentials involved. Pure.
import { PERIODS, periodStart } from '../budgets/periods.js';
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
  keysUsed: Map<string, number>;
  credentialsUsed: Map<string, number>;
}

export function buildBatch(records: readonly UsageRecordTable[], orgId: string): LedgerBatch {
  const spend = new Map<string, SpendDelta>();
  const keysUsed = new Map<string, number>();
  const credentialsUsed = new Map<string, number>();
  for (const record of records) {
    keysUsed.set(record.key_id, Math.max(keysUsed.get(record.key_id) ?? 0, record.at));
    if (record.credential_id !== null) {
      credentialsUsed.set(
        record.credential_id,
        Math.max(credentialsUsed.get(record.credential_id) ?? 0, record.at),
      );
    }
    if (record.cost_micro === 0) continue;
    const scopes: Array<[BudgetScope, string | null]> = [
      ['key', record.key_id],
      ['user', record.user_id],
      ['team', record.team_id],
      ['org', orgId],
    ];
    for (const [scope, id] of scopes) {
      if (id === null) continue;
      for (const period of PERIODS) {
        const start = periodStart(period, record.at);
        const key = `${scope}|${id}|${period}|${start}`;
        const row = spend.get(key);
        if (row) row.spent_micro += record.cost_micro;
        else
          spend.set(key, {
            scope_type: scope,
            scope_id: id,
            period,
            period_start: start,
            spent_micro: record.cost_micro,
          });
      }
    }
  }
  return { records: [...records], spend: [...spend.values()], keysUsed, credentialsUsed };
}
