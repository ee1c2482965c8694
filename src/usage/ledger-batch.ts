// What one ledger commit writes: the records, the spend they add per scope and UTC day, and what they
// add to the 15-minute usage rollups and to the daily ones. Pure.
// Only daily spend rows are kept: a month's or all-time spend is the sum of its days, so a record
// touches one row per scope instead of three.
import { periodStart } from '../budgets/periods.js';
import type { BudgetPeriod, BudgetScope, UsageRecordTable } from '../db/schema.js';
import { type DailyDelta, dailyDeltas, type RollupDelta, rollupDeltas } from './rollup-batch.js';

export interface SpendDelta {
  scope_type: BudgetScope;
  scope_id: string;
  period: BudgetPeriod;
  period_start: number;
  spent_micro: number;
}

export interface LedgerBatch {
  records: readonly UsageRecordTable[];
  spend: SpendDelta[];
  /** What the batch adds to the 15-minute usage rollups, one row per rollup key. */
  rollups: RollupDelta[];
  /** What it adds to the daily usage table, days cut by `dayOf` (the ledger's reporting timezone). */
  daily: DailyDelta[];
}

export function buildBatch(
  records: readonly UsageRecordTable[],
  orgId: string,
  dayOf: (bucket: number) => number = utcDayOf,
): LedgerBatch {
  // One map per scope type, keyed by id: no `scope|id|day` string per record and scope.
  const days = new Map<number, DayMaps>();
  const spend: SpendDelta[] = [];
  let day = -1;
  let maps: DayMaps = newDayMaps();
  for (const record of records) {
    if (record.cost_micro === 0) continue;
    const start = periodStart('day', record.at);
    if (start !== day) {
      // A batch that straddles midnight (rare): each day keeps its own maps, so a scope's day is one
      // row even when the days alternate (PostgreSQL refuses one upsert touching a row twice).
      day = start;
      const known = days.get(start);
      if (known) maps = known;
      else {
        maps = newDayMaps();
        days.set(start, maps);
      }
    }
    add(spend, maps.key, 'key', record.key_id, start, record.cost_micro);
    add(spend, maps.user, 'user', record.user_id, start, record.cost_micro);
    if (record.team_id !== null) add(spend, maps.team, 'team', record.team_id, start, record.cost_micro);
    add(spend, maps.org, 'org', orgId, start, record.cost_micro);
  }
  const rollups = rollupDeltas(records);
  return { records, spend, rollups, daily: dailyDeltas(rollups, dayOf) };
}

/** Days in UTC (a ledger created without a reporting timezone): whole multiples of 24 hours. */
function utcDayOf(bucket: number): number {
  return bucket - (bucket % 86_400_000);
}

interface DayMaps {
  key: Map<string, SpendDelta>;
  user: Map<string, SpendDelta>;
  team: Map<string, SpendDelta>;
  org: Map<string, SpendDelta>;
}

function newDayMaps(): DayMaps {
  return { key: new Map(), user: new Map(), team: new Map(), org: new Map() };
}

function add(
  spend: SpendDelta[],
  rows: Map<string, SpendDelta>,
  scope: BudgetScope,
  id: string,
  start: number,
  cost: number,
): void {
  const row = rows.get(id);
  if (row) {
    row.spent_micro += cost;
    return;
  }
  const fresh: SpendDelta = {
    scope_type: scope,
    scope_id: id,
    period: 'day',
    period_start: start,
    spent_micro: cost,
  };
  rows.set(id, fresh);
  spend.push(fresh);
}
