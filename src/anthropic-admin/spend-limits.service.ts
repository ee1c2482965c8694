// `tollgate anthropic limits`: Tollgate's org cap and the monthly budgets of teams mapped to Anthropic
// workspaces, mirrored to Anthropic's spend limits (a beta) as a backstop for traffic that bypasses
// Tollgate. Without access to the beta it says so and changes nothing.
import { budgetsOf } from '../budgets/budget.repo.js';
import type { BudgetService } from '../budgets/budget.service.js';
import type { TeamService } from '../identity/team.service.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { AppError } from '../lib/errors.js';
import { type AdminServiceDeps, openAdminTransport } from './admin.service.js';
import { type LimitRow, planLimits, type WantedLimit } from './spend-limit-plan.js';
import { createSpendLimitClient, type SpendLimitClient } from './spend-limits.client.js';

export const SPEND_LIMITS_NO_ACCESS =
  'this organisation has no access to spend limits (an early-access beta); nothing was changed';

export interface SpendLimitDeps extends AdminServiceDeps {
  readonly budgets: Pick<BudgetService, 'list'>;
  readonly teams: Pick<TeamService, 'get'>;
}

export interface TeamMapping {
  readonly team: string;
  readonly workspaceId: string | null;
}

/** Anthropic's refusals that mean "this organisation may not use the beta", said plainly. */
function plainNoAccess(error: unknown): unknown {
  if (
    error instanceof AppError &&
    (error.details.reason === 'no_access' || error.details.reason === 'beta_not_enabled')
  )
    return new AppError('forbidden', SPEND_LIMITS_NO_ACCESS, { reason: 'spend_limits_no_access' });
  return error;
}

export function checkWorkspaceId(id: string): string {
  if (!/^wrkspc_[A-Za-z0-9_-]{1,120}$/.test(id))
    throw new AppError('invalid_input', `"${id.slice(0, 40)}" is not an Anthropic workspace id (wrkspc_…)`);
  return id;
}

export function createSpendLimitService(ctx: ServiceContext, deps: SpendLimitDeps) {
  const db = ctx.installation.db.kysely;

  /** The org's monthly cap (config or budget) and each mapped team's monthly budget. */
  async function wanted(): Promise<WantedLimit[]> {
    const out: WantedLimit[] = [];
    const org = (await deps.budgets.list({ scope: 'org' })).find((b) => b.period === 'month');
    if (org) out.push({ scope: { type: 'organization' }, team: null, limitMicro: org.limitMicro });
    const teams = await db
      .selectFrom('teams')
      .select(['id', 'name', 'anthropic_workspace_id'])
      .where('anthropic_workspace_id', 'is not', null)
      .orderBy('name')
      .execute();
    for (const team of teams) {
      const month = (await budgetsOf(db, 'team', team.id)).find((b) => b.period === 'month');
      if (month === undefined || team.anthropic_workspace_id === null) continue;
      out.push({
        scope: { type: 'workspace', workspace_id: team.anthropic_workspace_id },
        team: team.name,
        limitMicro: Number(month.limitMicro),
      });
    }
    return out;
  }

  async function client(): Promise<SpendLimitClient> {
    return createSpendLimitClient(await openAdminTransport(deps));
  }

  async function plan(limits: SpendLimitClient): Promise<LimitRow[]> {
    const [want, current] = await Promise.all([
      wanted(),
      limits.list().catch((e: unknown) => Promise.reject(plainNoAccess(e))),
    ]);
    return planLimits(want, current);
  }

  return {
    /** Anthropic's current limits beside what Tollgate would set. */
    async show(): Promise<LimitRow[]> {
      return plan(await client());
    },

    /** Upserts only the limits that differ; returns every row with what was done. */
    async sync(by: Actor): Promise<LimitRow[]> {
      const limits = await client();
      const rows = await plan(limits);
      for (const row of rows) {
        if ((row.action !== 'create' && row.action !== 'update') || row.wanted === null) continue;
        const set = await limits
          .upsertMonthly({ scope: row.scope, amount: row.wanted })
          .catch((e: unknown) => Promise.reject(plainNoAccess(e)));
        await change(ctx, by, (u) =>
          u.audit('anthropic.limits.sync', 'anthropic_spend_limit', set.id, {
            scope: row.scope.type,
            workspace_id: row.scope.type === 'workspace' ? row.scope.workspace_id : null,
            team: row.team,
            from_cents: row.current ?? null,
            to_cents: row.wanted,
          }),
        );
      }
      return rows;
    },

    /** Maps a team to an Anthropic workspace (null unmaps it); audited. */
    async mapTeam(by: Actor, teamName: string, workspaceId: string | null): Promise<TeamMapping> {
      const team = await deps.teams.get(teamName);
      const id = workspaceId === null ? null : checkWorkspaceId(workspaceId);
      await change(ctx, by, async (u) => {
        await u.tx
          .updateTable('teams')
          .set({ anthropic_workspace_id: id })
          .where('id', '=', team.id)
          .execute();
        await u.audit('anthropic.workspace.map', 'team', team.id, {
          team: team.name,
          workspace_id: id,
          previous_workspace_id: team.anthropic_workspace_id,
        });
        await u.changed('team', team.id);
      });
      return { team: team.name, workspaceId: id };
    },

    async mappings(): Promise<TeamMapping[]> {
      const rows = await db
        .selectFrom('teams')
        .select(['name', 'anthropic_workspace_id'])
        .where('anthropic_workspace_id', 'is not', null)
        .orderBy('name')
        .execute();
      return rows.map((r) => ({ team: r.name, workspaceId: r.anthropic_workspace_id }));
    },
  };
}

export type SpendLimitService = ReturnType<typeof createSpendLimitService>;
