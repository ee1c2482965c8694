// The overview an admin opens first: spend this UTC month against the org cap and each team's budget
// (budgets count UTC months), the last 30 days of spend per day and model in the reporting timezone,
// the top users and keys of those days, totals by kind of token, and what needs attention (budgets
// near their limit, credentials marked invalid, keys past the age policy). Reads the 15-minute usage
// rollups (two grouped queries) and the budgets' own figures; nothing here scans the ledger.
import type { BudgetEntry } from '../budgets/budget.service.js';
import { type LiveFigures, standing } from '../budgets/budget-status.js';
import { periodStart } from '../budgets/periods.js';
import type { Db } from '../db/connect.js';
import type { KeyView } from '../keys/key.service.js';
import { dayLabel, dayStartOf } from '../lib/timezone.js';
import { ageDays, keyAges } from '../vault/status.service.js';

const DAY_MS = 86_400_000;

import { addSums, type SumRow, sumUsage, type UsageSums, zeroSums } from './usage.repo.js';

type Sums = UsageSums;

export const OVERVIEW_DAYS = 30;
const TOP = 10;

export interface OverviewDeps {
  readonly db: Db;
  readonly live: LiveFigures | null;
  readonly orgId: string;
  readonly timeZone: string;
  /** A budget at or above this share of its limit is "near" (the highest alert threshold below 1). */
  readonly nearShare: number;
  readonly keyMaxAgeDays: number;
  readonly budgets: () => Promise<BudgetEntry[]>;
  readonly keys: () => Promise<KeyView[]>;
  readonly credentials: () => Promise<
    ReadonlyArray<{ id: string; name: string; status: string; createdAt: number; rotatedAt: number | null }>
  >;
  readonly names: (table: 'users' | 'teams', ids: readonly string[]) => Promise<Map<string, string>>;
}

export interface BudgetLine {
  scope: BudgetEntry['scope'];
  id: string;
  name: string | null;
  period: BudgetEntry['period'];
  limit_micro_usd: number;
  spent_micro_usd: number;
  reserved_micro_usd: number;
  remaining_micro_usd: number;
}

export interface Alert {
  kind: 'budget' | 'credential' | 'key_age' | 'credential_age';
  severity: 'warning' | 'critical';
  message: string;
  object: { type: 'org' | 'team' | 'user' | 'key' | 'credential'; id: string; name: string | null };
}

export interface Overview {
  timezone: string;
  now: string;
  month: { start: string; spent_micro_usd: number; org_cap: BudgetLine | null; teams: BudgetLine[] };
  days: string[];
  by_model: Array<{ model: string | null; cost_micro_usd: number[] }>;
  top_users: Array<{ id: string; name: string | null } & Sums>;
  top_keys: Array<{ id: string; name: string | null; user: string | null } & Sums>;
  totals: Sums;
  alerts: Alert[];
}

export async function buildOverview(deps: OverviewDeps, now: number): Promise<Overview> {
  const dayStarts = lastDays(now, deps.timeZone, OVERVIEW_DAYS);
  const since = dayStarts[0] ?? now;
  const until = now + 1;
  // Two grouped reads: every sum per key and user (the users', the keys' and the totals fold from it;
  // a key acting for several users has a row per user), and only the cost per day and model (the chart).
  // Every read is independent of the others: on PostgreSQL they go out at once, on the pool's
  // connections (SQLite answers each in turn either way).
  const range = { since, until, filter: {}, timeZone: deps.timeZone };
  const [byBucketModel, byKeyUser, keys, budgets, settled, credentials] = await Promise.all([
    sumUsage(deps.db, { ...range, groupBy: ['bucket', 'model'] }, ['cost_micro']),
    sumUsage(deps.db, { ...range, groupBy: ['key', 'user'] }),
    deps.keys(),
    deps.budgets(),
    monthAndDaySpend(deps.db, now),
    deps.credentials(),
  ]);
  const byUser = foldBy(byKeyUser, 'user');
  const totals = zeroSums();
  for (const row of byKeyUser) addSums(totals, row);

  const models = new Map<string | null, number[]>();
  for (const row of byBucketModel) {
    const day = dayIndex(dayStarts, row.bucket ?? since);
    const model = row.model ?? null;
    let series = models.get(model);
    if (!series) {
      series = new Array<number>(dayStarts.length).fill(0);
      models.set(model, series);
    }
    series[day] = (series[day] ?? 0) + row.cost_micro;
  }

  const topUsers = top(byUser);
  const userNames = await deps.names(
    'users',
    topUsers.map((r) => r.user ?? ''),
  );
  const keyById = new Map(keys.map((k) => [k.id, k]));
  const lines = await budgetLines(deps, budgets, now, settled);

  return {
    timezone: deps.timeZone,
    now: new Date(now).toISOString(),
    month: {
      start: new Date(periodStart('month', now)).toISOString(),
      spent_micro_usd: await orgMonthSpend(deps, lines, now),
      org_cap: lines.find((l) => l.scope === 'org' && l.period === 'month') ?? null,
      teams: lines.filter((l) => l.scope === 'team'),
    },
    days: dayStarts.map((d) => dayLabel(d, deps.timeZone)),
    by_model: [...models.entries()]
      .map(([model, cost]) => ({ model, cost_micro_usd: cost }))
      .sort((a, b) => sum(b.cost_micro_usd) - sum(a.cost_micro_usd)),
    top_users: topUsers.map((r) => ({
      id: r.user ?? '',
      name: userNames.get(r.user ?? '') ?? null,
      ...sumsOf(r),
    })),
    top_keys: top(foldBy(byKeyUser, 'key')).map((r) => {
      const key = keyById.get(r.key ?? '');
      return { id: r.key ?? '', name: key?.name ?? null, user: key?.user ?? null, ...sumsOf(r) };
    }),
    totals,
    alerts: [
      ...budgetAlerts(lines, deps.nearShare),
      ...credentials
        .filter((c) => c.status === 'invalid')
        .map<Alert>((c) => ({
          kind: 'credential',
          severity: 'critical',
          message: `credential ${c.name} was marked invalid: Anthropic rejects it; rotate or remove it`,
          object: { type: 'credential', id: c.id, name: c.name },
        })),
      ...keyAges(keys, now, deps.keyMaxAgeDays).map<Alert>((k) => ({
        kind: 'key_age',
        severity: 'warning',
        message: `key ${k.name ?? k.id} of ${k.user} is ${k.age_days} days old (policy: ${deps.keyMaxAgeDays}); rotate it`,
        object: { type: 'key', id: k.id, name: k.name },
      })),
      ...credentials
        .filter(
          (c) => c.status === 'active' && now - (c.rotatedAt ?? c.createdAt) > deps.keyMaxAgeDays * DAY_MS,
        )
        .map<Alert>((c) => ({
          kind: 'credential_age',
          severity: 'warning',
          message: `credential ${c.name} is ${ageDays(c.rotatedAt ?? c.createdAt, now)} days old (policy: ${deps.keyMaxAgeDays}); rotate it`,
          object: { type: 'credential', id: c.id, name: c.name },
        })),
    ],
  };
}

/** The starts of the last `n` days in the zone, oldest first, the last being today's. */
export function lastDays(now: number, timeZone: string, n: number): number[] {
  const starts = [dayStartOf(now, timeZone)];
  while (starts.length < n) starts.unshift(dayStartOf((starts[0] ?? now) - 1, timeZone));
  return starts;
}

function dayIndex(starts: readonly number[], at: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] ?? 0) <= at) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function sumsOf(row: SumRow): Sums {
  const out = zeroSums();
  addSums(out, row);
  return out;
}

/** The rows summed per value of one of their dimensions. */
function foldBy(rows: readonly SumRow[], dim: 'user' | 'key'): SumRow[] {
  const out = new Map<string | null, SumRow>();
  for (const row of rows) {
    const id = row[dim] ?? null;
    const into = out.get(id);
    if (into) addSums(into, row);
    else out.set(id, { ...sumsOf(row), [dim]: id });
  }
  return [...out.values()];
}

function top(rows: readonly SumRow[]): SumRow[] {
  return [...rows].sort((a, b) => b.cost_micro - a.cost_micro || b.requests - a.requests).slice(0, TOP);
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** Settled spend this UTC month and today of every org, team and user scope: one grouped query. */
async function monthAndDaySpend(db: Db, now: number): Promise<Map<string, { month: number; day: number }>> {
  const today = periodStart('day', now);
  const rows = await db.kysely
    .selectFrom('spend')
    .select((eb) => [
      'scope_type',
      'scope_id',
      eb.fn.sum<number>('spent_micro').as('month'),
      eb.fn
        .sum<number>(eb.case().when('period_start', '>=', today).then(eb.ref('spent_micro')).else(0).end())
        .as('day'),
    ])
    .where('period', '=', 'day')
    .where('period_start', '>=', periodStart('month', now))
    .where('scope_type', 'in', ['org', 'team', 'user'])
    .groupBy(['scope_type', 'scope_id'])
    .execute();
  return new Map(
    rows.map((r) => [`${r.scope_type}|${r.scope_id}`, { month: Number(r.month), day: Number(r.day) }]),
  );
}

/**
 * Where each budget stands now (spent / reserved / remaining in its current UTC period): the gateway's
 * book when it holds the scope, else the settled spend — org, team and user month and day budgets from
 * one grouped query, the others one by one.
 */
export async function budgetLines(
  deps: Pick<OverviewDeps, 'db' | 'live'>,
  budgets: readonly BudgetEntry[],
  now: number,
  settled?: ReadonlyMap<string, { month: number; day: number }>,
): Promise<BudgetLine[]> {
  const spend = settled ?? (await monthAndDaySpend(deps.db, now));
  return Promise.all(budgets.map((b) => budgetLine(deps, spend, b, now)));
}

async function budgetLine(
  deps: Pick<OverviewDeps, 'db' | 'live'>,
  settled: ReadonlyMap<string, { month: number; day: number }>,
  b: BudgetEntry,
  now: number,
): Promise<BudgetLine> {
  const base = { scope: b.scope, id: b.id, name: b.name, period: b.period, limit_micro_usd: b.limitMicro };
  const held = deps.live?.(b.scope, b.id, b.period) ?? null;
  // Month and day budgets of org, team and user scopes come from the grouped query (or the gateway's
  // book, which also knows what is reserved); a key's lineage and all-time budgets are read one by one.
  if (b.scope !== 'key' && b.period !== 'total') {
    const figures = settled.get(`${b.scope}|${b.id}`);
    const spent = held ? held.spent : b.period === 'month' ? (figures?.month ?? 0) : (figures?.day ?? 0);
    const reserved = held ? held.reserved : 0;
    return {
      ...base,
      spent_micro_usd: spent,
      reserved_micro_usd: reserved,
      remaining_micro_usd: Math.max(0, b.limitMicro - spent - reserved),
    };
  }
  const f = await standing(deps.db, deps.live, b.scope, b.id, b.period, b.limitMicro, now);
  return {
    ...base,
    spent_micro_usd: f.spentMicro,
    reserved_micro_usd: f.reservedMicro,
    remaining_micro_usd: f.remainingMicro,
  };
}

/** The org's spend this UTC month as the gateway counts it (its cap's own figure when there is one). */
async function orgMonthSpend(deps: OverviewDeps, lines: readonly BudgetLine[], now: number): Promise<number> {
  const cap = lines.find((l) => l.scope === 'org' && l.period === 'month');
  if (cap) return cap.spent_micro_usd;
  return (await standing(deps.db, deps.live, 'org', deps.orgId, 'month', 0, now)).spentMicro;
}

function budgetAlerts(lines: readonly BudgetLine[], nearShare: number): Alert[] {
  const alerts: Alert[] = [];
  for (const l of lines) {
    if (l.limit_micro_usd <= 0) continue;
    const used = (l.spent_micro_usd + l.reserved_micro_usd) / l.limit_micro_usd;
    if (used < nearShare) continue;
    const who = l.scope === 'org' ? 'the organisation' : `${l.scope} ${l.name ?? l.id}`;
    const pct = Math.floor(used * 100);
    alerts.push({
      kind: 'budget',
      severity: used >= 1 ? 'critical' : 'warning',
      message:
        used >= 1
          ? `${who} has used its ${l.period} budget (${pct}%): requests are refused until it resets or is raised`
          : `${who} has used ${pct}% of its ${l.period} budget`,
      object: { type: l.scope, id: l.id, name: l.name },
    });
  }
  return alerts;
}
