// Admin operations on teams.
import { z } from 'zod/v4';
import type { TeamView } from '../../identity/team.service.js';
import { defineOp } from '../operation.js';
import { pageList, pageOf, pageQuery } from '../pagination.js';
import { byokSchema, iso, nameSchema, refSchema, timeOutput, usdOrNone, usdOrNull } from '../schemas.js';

export const teamSchema = z.object({
  id: z.string(),
  name: z.string(),
  members: z.number().int(),
  monthly_budget_usd: z.string().nullable(),
  byok: byokSchema,
  created_at: timeOutput,
});

export function teamJson(t: TeamView): z.input<typeof teamSchema> {
  return {
    id: t.id,
    name: t.name,
    members: t.members,
    monthly_budget_usd: usdOrNull(t.monthlyBudgetMicro),
    byok: t.byok,
    created_at: iso(t.createdAt),
  };
}

const teamRef = z.strictObject({ team: refSchema.meta({ description: 'team name or id' }) });

export const teamOps = [
  defineOp({
    id: 'teams.list',
    method: 'GET',
    path: '/admin/v1/teams',
    tag: 'teams',
    summary: 'List teams (ordered by name)',
    query: z.strictObject({
      ...pageQuery,
      name_prefix: z
        .string()
        .max(64)
        .optional()
        .meta({ description: 'only teams whose name starts with this' }),
    }),
    response: pageOf(teamSchema),
    run: async (ctx, { query }) => {
      const teams = (await ctx.services.teams.list()).filter(
        (t) => query.name_prefix === undefined || t.name.startsWith(query.name_prefix),
      );
      const page = pageList(teams, (t) => [t.name, t.id], query, 2);
      return { items: page.rows.map(teamJson), next_cursor: page.next_cursor };
    },
  }),
  defineOp({
    id: 'teams.create',
    method: 'POST',
    path: '/admin/v1/teams',
    tag: 'teams',
    summary: 'Create a team',
    status: 201,
    body: z.strictObject({
      name: nameSchema,
      monthly_budget_usd: usdOrNone.optional(),
      byok: byokSchema.optional(),
    }),
    response: teamSchema,
    run: async (ctx, { body }) =>
      teamJson(
        await ctx.services.teams.add(ctx.actor, {
          name: body.name,
          monthlyBudgetMicro: body.monthly_budget_usd ?? null,
          byok: body.byok ?? 'preferred',
        }),
      ),
  }),
  defineOp({
    id: 'teams.get',
    method: 'GET',
    path: '/admin/v1/teams/{team}',
    tag: 'teams',
    summary: 'Show a team',
    params: teamRef,
    response: teamSchema,
    run: async (ctx, { params }) => teamJson(await ctx.services.teams.show(params.team)),
  }),
  defineOp({
    id: 'teams.update',
    method: 'PATCH',
    path: '/admin/v1/teams/{team}',
    tag: 'teams',
    summary: "Change a team's monthly budget (null removes it) or bring-your-own-key policy",
    params: teamRef,
    body: z.strictObject({ monthly_budget_usd: usdOrNone.optional(), byok: byokSchema.optional() }),
    response: teamSchema,
    run: async (ctx, { params, body }) =>
      teamJson(
        await ctx.services.teams.update(ctx.actor, params.team, {
          ...(body.monthly_budget_usd === undefined ? {} : { monthlyBudgetMicro: body.monthly_budget_usd }),
          ...(body.byok === undefined ? {} : { byok: body.byok }),
        }),
      ),
  }),
];
