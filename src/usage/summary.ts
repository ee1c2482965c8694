// `tollgate usage --summary`: this UTC month at a glance (the month budgets count) — per user and per
// model: requests, tokens by kind, what prompt caching saved, cost — with the totals, and where every
// org, team and user budget stands (spent / reserved / remaining in its current period). One grouped read
// of the usage rollups (per user and model, folded both ways; the same sums `tollgate usage` reads) and
// the budgets' own figures (budgetLines, as the overview shows them); nothing scans the ledger.
import type { BudgetEntry } from '../budgets/budget.service.js';
import type { LiveFigures } from '../budgets/budget-status.js';
import { periodStart } from '../budgets/periods.js';
import type { Db } from '../db/connect.js';
import { type BudgetLine, budgetLines } from './overview.js';
import { addSums, type SumRow, sumUsage, type UsageSums, zeroSums } from './usage.repo.js';

export interface SummaryDeps {
  readonly db: Db;
  readonly live: LiveFigures | null;
  /** The reporting timezone (lets whole days come from the daily table; the month stays UTC). */
  readonly timeZone: string;
  readonly budgets: () => Promise<BudgetEntry[]>;
  readonly userNames: (ids: readonly string[]) => Promise<Map<string, string>>;
}

export interface SummaryFigures {
  since: number;
  until: number;
  totals: UsageSums;
  byUser: Array<{ id: string | null; name: string | null; sums: UsageSums }>;
  byModel: Array<{ model: string | null; sums: UsageSums }>;
  budgets: BudgetLine[];
}

const SCOPES: ReadonlySet<BudgetEntry['scope']> = new Set(['org', 'team', 'user']);
const SCOPE_ORDER = { org: 0, team: 1, user: 2, key: 3 } as const;
const PERIOD_ORDER = { day: 0, month: 1, total: 2 } as const;

/** Org, teams, users; then by name and period (as `budget list`). */
function byScope(a: BudgetEntry, b: BudgetEntry): number {
  return (
    SCOPE_ORDER[a.scope] - SCOPE_ORDER[b.scope] ||
    (a.name ?? '').localeCompare(b.name ?? '') ||
    PERIOD_ORDER[a.period] - PERIOD_ORDER[b.period]
  );
}

export async function buildSummary(deps: SummaryDeps, now: number): Promise<SummaryFigures> {
  const since = periodStart('month', now);
  const until = now + 1;
  const [rows, entries] = await Promise.all([
    sumUsage(deps.db, { since, until, groupBy: ['user', 'model'], timeZone: deps.timeZone }),
    deps.budgets(),
  ]);
  const totals = zeroSums();
  for (const r of rows) addSums(totals, r);
  const users = fold(rows, 'user');
  const names = await deps.userNames(users.map(([id]) => id).filter((id): id is string => id !== null));
  const budgets = await budgetLines(deps, entries.filter((b) => SCOPES.has(b.scope)).sort(byScope), now);
  return {
    since,
    until,
    totals,
    byUser: users.map(([id, sums]) => ({ id, name: id === null ? null : (names.get(id) ?? null), sums })),
    byModel: fold(rows, 'model').map(([model, sums]) => ({ model, sums })),
    budgets,
  };
}

/** The rows summed per value of one dimension, the largest cost first. */
function fold(rows: readonly SumRow[], dim: 'user' | 'model'): Array<[string | null, UsageSums]> {
  const out = new Map<string | null, UsageSums>();
  for (const r of rows) {
    const id = r[dim] ?? null;
    let into = out.get(id);
    if (!into) {
      into = zeroSums();
      out.set(id, into);
    }
    addSums(into, r);
  }
  return [...out.entries()].sort(
    ([a, x], [b, y]) =>
      y.cost_micro - x.cost_micro || y.requests - x.requests || String(a).localeCompare(String(b)),
  );
}
