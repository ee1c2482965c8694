// Budget threshold crossings, detected off the request path: the ledger reports the scopes each committed
// batch charged (`note`), and shortly after, those scopes' settled spend — what the ledger committed, the
// same figure the gateway loads its counters from (budgets/spend.ts) — is compared with each limit at
// every threshold. Reservations are not counted: they come and go with requests in flight. At start, and
// whenever limits change, every scope with a limit is checked too (a crossing committed just before a
// crash, or a lowered limit, is found without waiting for more spend).
import { loadOrgLimits, type OrgLimits } from '../budgets/org-limits.js';
import { PERIODS, periodStart } from '../budgets/periods.js';
import { loadSpend } from '../budgets/spend.js';
import type { Db } from '../db/connect.js';
import type { BudgetPeriod, BudgetScope } from '../db/schema.js';
import type { Clock } from '../lib/clock.js';
import {
  type BudgetCrossing,
  budgetAlert,
  budgetCondition,
  crossedThresholds,
  type NewAlert,
} from './alert-text.js';

export interface BudgetWatchDeps {
  readonly db: Db;
  readonly orgId: string;
  readonly orgCapMicro: number | null;
  readonly thresholds: readonly number[];
  readonly clock: Clock;
  /** Records the alerts (those whose condition is new); returns how many were new. */
  readonly raise: (alerts: readonly NewAlert[]) => Promise<number>;
  /** How long after a commit its scopes are checked (several commits are checked together; default 1 s). */
  readonly delayMs?: number;
}

type Limits = Partial<Record<BudgetPeriod, number>>;

/** Scopes noted and not yet checked, at most; past this the next check covers every scope with a limit. */
const NOTED_MAX = 20_000;
/** Key → lineage ids remembered (a key's lineage never changes). */
const LINEAGES_MAX = 50_000;
/** Conditions known to have an alert already (skips the database for them). */
const KNOWN_MAX = 50_000;

export function createBudgetWatch(deps: BudgetWatchDeps) {
  const delayMs = deps.delayMs ?? 1_000;
  /** Limits of every scope that has one, by `scope|id` (key scopes by lineage). */
  let limits = new Map<string, Limits>();
  let limitsLoaded = false;
  let noted = new Map<string, { scope: BudgetScope; id: string }>();
  let everything = false;
  let reloadLimits = true;
  let lineages = new Map<string, string>();
  let known = new Set<string>();
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let closed = false;

  /** Scopes a committed ledger batch charged (key scopes by key id). Cheap: no I/O, no awaits. */
  function note(spend: ReadonlyArray<{ scope_type: BudgetScope; scope_id: string }>): void {
    for (const s of spend) {
      if (noted.size >= NOTED_MAX) {
        everything = true;
        noted = new Map();
        break;
      }
      noted.set(`${s.scope_type}|${s.scope_id}`, { scope: s.scope_type, id: s.scope_id });
    }
    schedule(delayMs);
  }

  /** Limits changed (budgets, keys, users, org): reload them and check the scopes whose limits moved. */
  function limitsChanged(): void {
    reloadLimits = true;
    schedule(delayMs);
  }

  function schedule(delay: number): void {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = null;
      if (running) {
        schedule(delay);
        return;
      }
      running = check()
        .catch(() => undefined) // checked again on the next commit or change
        .finally(() => {
          running = null;
        });
    }, delay);
    timer.unref();
  }

  async function check(): Promise<void> {
    const scopes = new Map<string, { scope: BudgetScope; id: string }>();
    if (reloadLimits) {
      reloadLimits = false;
      const previous = limits;
      const fresh = await loadLimits();
      limits = fresh;
      // At start every scope with a limit is checked; later, those whose limits are new or moved.
      for (const [k, l] of fresh) {
        if (!limitsLoaded || !sameLimits(previous.get(k), l)) scopes.set(k, scopeOf(k));
      }
      limitsLoaded = true;
    }
    const touched = noted;
    noted = new Map();
    if (everything) {
      everything = false;
      for (const k of limits.keys()) scopes.set(k, scopeOf(k));
    }
    await addTouched(scopes, touched);
    const now = deps.clock();
    const crossings: BudgetCrossing[] = [];
    for (const { scope, id } of scopes.values()) {
      const scopeLimits = limits.get(`${scope}|${id}`);
      if (!scopeLimits) continue;
      for (const period of PERIODS) {
        const limit = scopeLimits[period];
        if (limit === undefined || limit <= 0) continue;
        const start = periodStart(period, now);
        // Every threshold of this period already raised: nothing left to find (no query).
        const at = { scope, id, period, periodStart: start };
        if (deps.thresholds.every((threshold) => known.has(budgetCondition({ ...at, threshold })))) continue;
        const spent = await loadSpend(deps.db.kysely, scope, id, period, start);
        for (const threshold of crossedThresholds(spent, limit, deps.thresholds)) {
          const c = {
            scope,
            id,
            name: null,
            period,
            periodStart: start,
            threshold,
            limitMicro: limit,
            spentMicro: spent,
          };
          if (!known.has(budgetAlert(c).condition)) crossings.push(c);
        }
      }
    }
    if (crossings.length === 0) return;
    const names = await scopeNames(crossings);
    const alerts = crossings.map((c) => {
      const named = names.get(`${c.scope}|${c.id}`);
      return budgetAlert({ ...c, name: named?.name ?? null, user: named?.user ?? null });
    });
    await deps.raise(alerts);
    if (known.size + alerts.length > KNOWN_MAX) known = new Set();
    for (const a of alerts) known.add(a.condition);
  }

  /** The noted scopes that have limits; key ids become their lineages. */
  async function addTouched(
    into: Map<string, { scope: BudgetScope; id: string }>,
    touched: ReadonlyMap<string, { scope: BudgetScope; id: string }>,
  ): Promise<void> {
    const unknownKeys: string[] = [];
    for (const t of touched.values()) {
      if (t.scope === 'key' && !lineages.has(t.id)) unknownKeys.push(t.id);
    }
    for (let i = 0; i < unknownKeys.length; i += 500) {
      const rows = await deps.db.kysely
        .selectFrom('gateway_keys')
        .select(['id', 'lineage_id'])
        .where('id', 'in', unknownKeys.slice(i, i + 500))
        .execute();
      if (lineages.size + rows.length > LINEAGES_MAX) lineages = new Map();
      for (const r of rows) lineages.set(r.id, r.lineage_id);
    }
    for (const t of touched.values()) {
      const id = t.scope === 'key' ? lineages.get(t.id) : t.id;
      if (id === undefined) continue;
      const k = `${t.scope}|${id}`;
      if (limits.has(k)) into.set(k, { scope: t.scope, id });
    }
  }

  async function loadLimits(): Promise<Map<string, Limits>> {
    const rows = await deps.db.kysely
      .selectFrom('budgets')
      .select(['scope_type', 'scope_id', 'period', 'limit_micro'])
      .where('scope_type', '!=', 'org')
      .execute();
    const out = new Map<string, Limits>();
    for (const r of rows) {
      const k = `${r.scope_type}|${r.scope_id}`;
      const l = out.get(k) ?? {};
      l[r.period] = Number(r.limit_micro);
      out.set(k, l);
    }
    // The org's limits as the gateway enforces them (the configured monthly cap wins).
    const org: OrgLimits = await loadOrgLimits(deps.db.kysely, deps.orgId, deps.orgCapMicro);
    if (Object.keys(org).length > 0) out.set(`org|${deps.orgId}`, { ...org });
    return out;
  }

  async function scopeNames(
    crossings: readonly BudgetCrossing[],
  ): Promise<Map<string, { name: string; user: string | null }>> {
    const names = new Map<string, { name: string; user: string | null }>();
    const ids = (scope: BudgetScope) => [
      ...new Set(crossings.filter((c) => c.scope === scope).map((c) => c.id)),
    ];
    for (const table of ['users', 'teams'] as const) {
      const wanted = ids(table === 'users' ? 'user' : 'team');
      if (wanted.length === 0) continue;
      const rows = await deps.db.kysely
        .selectFrom(table)
        .select(['id', 'name'])
        .where('id', 'in', wanted)
        .execute();
      for (const r of rows)
        names.set(`${table === 'users' ? 'user' : 'team'}|${r.id}`, { name: r.name, user: null });
    }
    for (const lineage of ids('key')) {
      // The lineage's newest key names it (a rotation keeps the budget and usually the name).
      const row = await deps.db.kysely
        .selectFrom('gateway_keys')
        .innerJoin('users', 'users.id', 'gateway_keys.user_id')
        .select(['gateway_keys.id', 'gateway_keys.name', 'users.name as user'])
        .where('gateway_keys.lineage_id', '=', lineage)
        .orderBy('gateway_keys.created_at', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (row) names.set(`key|${lineage}`, { name: row.name ?? row.id, user: row.user });
    }
    return names;
  }

  return {
    note,
    limitsChanged,
    /** Checks now: every scope at the first call, then what was noted or changed (tests, start). */
    async checkNow(): Promise<void> {
      while (running) await running;
      await check();
    },
    /** Resolves when no check is scheduled or running (tests). */
    async idle(): Promise<void> {
      while (running || timer) {
        if (running) await running;
        else await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async close(): Promise<void> {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      while (running) await running;
    },
  };
}

function scopeOf(k: string): { scope: BudgetScope; id: string } {
  const at = k.indexOf('|');
  return { scope: k.slice(0, at) as BudgetScope, id: k.slice(at + 1) };
}

function sameLimits(a: Limits | undefined, b: Limits): boolean {
  return a !== undefined && PERIODS.every((p) => a[p] === b[p]);
}
