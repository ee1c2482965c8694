// Budgets of every scope (org, team, user, key) by name: listing, setting and clearing limits, each
// change audited and reported on the change feed so a running gateway applies it within a second.
// The org's monthly limit is the configuration's when claude.max_monthly_spend_usd is set (product.md
// §3): it is listed from there and cannot be changed here.
import type { BudgetPeriod, BudgetScope } from '../db/schema.js';
import type { TeamService } from '../identity/team.service.js';
import type { UserService } from '../identity/user.service.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { AppError } from '../lib/errors.js';
import { setBudget } from './budget.repo.js';

export const BUDGET_SCOPES = ['org', 'team', 'user', 'key'] as const satisfies readonly BudgetScope[];
export const BUDGET_PERIODS = ['day', 'month', 'total'] as const satisfies readonly BudgetPeriod[];

export const ORG_CAP_REFUSAL =
  'the org monthly cap is set in tollgate.yml (claude.max_monthly_spend_usd); change it there';

/** One scope budgets apply to. */
export interface BudgetTarget {
  readonly scope: BudgetScope;
  /** Where its rows live: the org id, a team's or user's id, a key's lineage id. */
  readonly id: string;
  /** As shown: a team's or user's name, the key id named (or the lineage's first key), null for the org. */
  readonly name: string | null;
}

export interface BudgetEntry extends BudgetTarget {
  readonly period: BudgetPeriod;
  readonly limitMicro: number;
  readonly source: 'config' | 'api';
}

export interface BudgetDeps {
  readonly teams: TeamService;
  readonly users: UserService;
  readonly orgId: string;
  /** claude.max_monthly_spend_micro (null: the org's monthly budget is a row like any other). */
  readonly orgCapMicro: number | null;
}

export function createBudgetService(ctx: ServiceContext, deps: BudgetDeps) {
  const db = ctx.installation.db.kysely;

  /** The scope a selector names; refuses an unknown target (404) or a missing/extra one (400). */
  async function resolve(scope: BudgetScope, target: string | undefined): Promise<BudgetTarget> {
    if (scope === 'org') {
      if (target !== undefined)
        throw new AppError('invalid_input', 'the org scope takes no target (there is one organisation)');
      return { scope, id: deps.orgId, name: null };
    }
    if (target === undefined)
      throw new AppError('invalid_input', `a ${scope} budget needs a target (its name or id)`);
    if (scope === 'team') {
      const team = await deps.teams.get(target);
      return { scope, id: team.id, name: team.name };
    }
    if (scope === 'user') {
      const user = await deps.users.get(target);
      return { scope, id: user.id, name: user.name };
    }
    // A key's budget belongs to its lineage (the key and its rotations share one budget and its spend).
    const key = await db
      .selectFrom('gateway_keys')
      .select(['id', 'lineage_id'])
      .where('id', '=', target)
      .executeTakeFirst();
    if (!key) throw new AppError('not_found', `no gateway key with id ${target}`);
    return { scope, id: key.lineage_id, name: key.id };
  }

  function refuseConfigured(target: BudgetTarget, period: BudgetPeriod): void {
    if (target.scope === 'org' && period === 'month' && deps.orgCapMicro !== null)
      throw new AppError('conflict', ORG_CAP_REFUSAL);
  }

  async function set(
    by: Actor,
    target: BudgetTarget,
    period: BudgetPeriod,
    limitMicro: number,
  ): Promise<BudgetEntry> {
    refuseConfigured(target, period);
    if (!Number.isSafeInteger(limitMicro) || limitMicro < 0)
      throw new AppError('invalid_input', 'a budget limit must be a whole, non-negative number of micro-USD');
    await change(ctx, by, async (u) => {
      await setBudget(u.tx, target.scope, target.id, period, limitMicro, u.now);
      await u.audit('budget.set', target.scope, target.id, {
        scope: target.scope,
        target: target.name,
        period,
        limit_micro: limitMicro,
      });
      await u.changed('budget', target.id);
    });
    return { ...target, period, limitMicro, source: 'api' };
  }

  /** Removes a limit; false (and nothing audited) when there was none. */
  async function clear(by: Actor, target: BudgetTarget, period: BudgetPeriod): Promise<boolean> {
    refuseConfigured(target, period);
    return change(ctx, by, async (u) => {
      const existing = await u.tx
        .selectFrom('budgets')
        .select('limit_micro')
        .where('scope_type', '=', target.scope)
        .where('scope_id', '=', target.id)
        .where('period', '=', period)
        .executeTakeFirst();
      if (!existing) return false;
      await setBudget(u.tx, target.scope, target.id, period, null, u.now);
      await u.audit('budget.clear', target.scope, target.id, {
        scope: target.scope,
        target: target.name,
        period,
        previous_limit_micro: Number(existing.limit_micro),
      });
      await u.changed('budget', target.id);
      return true;
    });
  }

  /**
   * Every budget, or those of one scope type or one target: rows of the table, named, plus the
   * configured org cap (which hides an org monthly row left from before it was configured). Budgets
   * of removed users are left out: nothing can spend on them.
   */
  async function list(filter: { scope?: BudgetScope; target?: BudgetTarget } = {}): Promise<BudgetEntry[]> {
    let query = db.selectFrom('budgets').select(['scope_type', 'scope_id', 'period', 'limit_micro']);
    const scope = filter.target?.scope ?? filter.scope;
    if (scope !== undefined) query = query.where('scope_type', '=', scope);
    if (filter.target) query = query.where('scope_id', '=', filter.target.id);
    const rows = await query.execute();
    const [teams, users] = await Promise.all([
      namesOf(rows.some((r) => r.scope_type === 'team') ? 'teams' : null),
      namesOf(rows.some((r) => r.scope_type === 'user') ? 'users' : null),
    ]);
    const entries: BudgetEntry[] = [];
    for (const r of rows) {
      const base = { period: r.period, limitMicro: Number(r.limit_micro), source: 'api' as const };
      if (r.scope_type === 'org') {
        if (r.scope_id !== deps.orgId || (r.period === 'month' && deps.orgCapMicro !== null)) continue;
        entries.push({ scope: 'org', id: r.scope_id, name: null, ...base });
      } else if (r.scope_type === 'key') {
        const name = filter.target?.name ?? r.scope_id;
        entries.push({ scope: 'key', id: r.scope_id, name, ...base });
      } else {
        const name = (r.scope_type === 'team' ? teams : users).get(r.scope_id);
        if (name !== undefined) entries.push({ scope: r.scope_type, id: r.scope_id, name, ...base });
      }
    }
    if (deps.orgCapMicro !== null && (scope === undefined || scope === 'org'))
      entries.push({
        scope: 'org',
        id: deps.orgId,
        name: null,
        period: 'month',
        limitMicro: deps.orgCapMicro,
        source: 'config',
      });
    return entries;
  }

  /**
   * Names of live teams or users by id (a removed user is absent). Read whole, with one fixed query:
   * an `in (…)` list would add a statement per length to SQLite's cache.
   */
  async function namesOf(table: 'teams' | 'users' | null): Promise<Map<string, string>> {
    if (table === null) return new Map();
    const rows =
      table === 'teams'
        ? await db.selectFrom('teams').select(['id', 'name']).execute()
        : await db.selectFrom('users').select(['id', 'name']).where('removed_at', 'is', null).execute();
    return new Map(rows.map((r) => [r.id, r.name]));
  }

  return { resolve, set, clear, list };
}

export type BudgetService = ReturnType<typeof createBudgetService>;
