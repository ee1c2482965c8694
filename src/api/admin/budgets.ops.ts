// Admin operations on budgets of every scope: list with what is spent and reserved now, set, clear.
import { z } from 'zod/v4';
import { BUDGET_PERIODS, BUDGET_SCOPES, type BudgetEntry } from '../../budgets/budget.service.js';
import { standing } from '../../budgets/budget-status.js';
import { AppError } from '../../lib/errors.js';
import type { OpContext } from '../operation.js';
import { defineOp } from '../operation.js';
import { pageList, pageOf, pageQuery } from '../pagination.js';
import { refSchema, usdInput, usdOut, usdOutput } from '../schemas.js';

const scopeSchema = z.enum(BUDGET_SCOPES);
const periodSchema = z.enum(BUDGET_PERIODS);
const targetSchema = refSchema.meta({
  description: "a team's or user's name or id, or a gateway key's id; none for the org",
});

export const budgetSchema = z.object({
  scope: scopeSchema,
  target: z.string().nullable().meta({ description: 'name (a key: its id); null for the org' }),
  target_id: z
    .string()
    .meta({ description: "the scope's id (a key: its lineage, shared with its rotations)" }),
  period: periodSchema,
  limit_usd: usdOutput,
  spent_usd: usdOutput,
  reserved_usd: usdOutput.meta({ description: 'held by requests in flight on the serving process' }),
  remaining_usd: usdOutput,
  source: z
    .enum(['config', 'api'])
    .meta({ description: 'config: claude.max_monthly_spend_usd, read-only here' }),
});

export const clearedBudgetSchema = z.object({
  scope: scopeSchema,
  target: z.string().nullable(),
  target_id: z.string(),
  period: periodSchema,
  removed: z.boolean().meta({ description: 'false when there was no such budget' }),
});

/** A budget with its current figures (see `standing`: the local CLI has no book, so nothing reserved). */
async function budgetJson(ctx: OpContext, b: BudgetEntry): Promise<z.input<typeof budgetSchema>> {
  const figures = await standing(
    ctx.installation.db,
    ctx.budgets,
    b.scope,
    b.id,
    b.period,
    b.limitMicro,
    ctx.now(),
  );
  const { spentMicro: spent, reservedMicro: reserved, remainingMicro: remaining } = figures;
  return {
    scope: b.scope,
    target: b.name,
    target_id: b.id,
    period: b.period,
    limit_usd: usdOut(b.limitMicro),
    spent_usd: usdOut(spent),
    reserved_usd: usdOut(reserved),
    remaining_usd: usdOut(remaining),
    source: b.source,
  };
}

const SCOPE_ORDER: Record<BudgetEntry['scope'], number> = { org: 0, team: 1, user: 2, key: 3 };
const PERIOD_ORDER: Record<BudgetEntry['period'], number> = { day: 0, month: 1, total: 2 };

export const budgetOps = [
  defineOp({
    id: 'budgets.list',
    method: 'GET',
    path: '/admin/v1/budgets',
    tag: 'budgets',
    summary: 'List budgets with their spend in the current period (org, teams, users, keys; then by name)',
    query: z.strictObject({ ...pageQuery, scope: scopeSchema.optional(), target: targetSchema.optional() }),
    response: pageOf(budgetSchema),
    run: async (ctx, { query }) => {
      const service = ctx.services.budgets;
      const filter =
        query.target !== undefined || query.scope === 'org'
          ? { target: await service.resolve(query.scope ?? need(), query.target) }
          : query.scope === undefined
            ? {}
            : { scope: query.scope };
      const page = pageList(
        await service.list(filter),
        (b) => [SCOPE_ORDER[b.scope], b.name ?? '', b.id, PERIOD_ORDER[b.period]],
        query,
        4,
      );
      const items = [];
      for (const b of page.rows) items.push(await budgetJson(ctx, b));
      return { items, next_cursor: page.next_cursor };
    },
  }),
  defineOp({
    id: 'budgets.set',
    method: 'PUT',
    path: '/admin/v1/budgets',
    tag: 'budgets',
    summary: "Set a scope's limit for a period (the org's monthly one only when tollgate.yml sets none)",
    body: z.strictObject({
      scope: scopeSchema,
      target: targetSchema.optional(),
      period: periodSchema,
      limit_usd: usdInput,
    }),
    response: budgetSchema,
    run: async (ctx, { body }) => {
      const service = ctx.services.budgets;
      const target = await service.resolve(body.scope, body.target);
      return budgetJson(ctx, await service.set(ctx.actor, target, body.period, body.limit_usd));
    },
  }),
  defineOp({
    id: 'budgets.clear',
    method: 'DELETE',
    path: '/admin/v1/budgets',
    tag: 'budgets',
    summary: "Remove a scope's limit for a period (no limit then)",
    query: z.strictObject({ scope: scopeSchema, target: targetSchema.optional(), period: periodSchema }),
    response: clearedBudgetSchema,
    run: async (ctx, { query }) => {
      const service = ctx.services.budgets;
      const target = await service.resolve(query.scope, query.target);
      const removed = await service.clear(ctx.actor, target, query.period);
      return {
        scope: target.scope,
        target: target.name,
        target_id: target.id,
        period: query.period,
        removed,
      };
    },
  }),
];

function need(): never {
  throw new AppError('invalid_input', 'target needs a scope (org, team, user or key)');
}
