// The member's profile (with what remains of every budget that applies to them) and settings.
import { z } from 'zod/v4';
import { type BudgetFigures, budgetFigures } from '../../budgets/budget-status.js';
import { change } from '../../install/context.js';
import { AppError } from '../../lib/errors.js';
import { bareModelId, createPriceBook } from '../../pricing/models.js';
import { defineOp, type OpContext } from '../operation.js';
import { byokSchema, isoOrNull, usdOut } from '../schemas.js';
import { type Member, memberOf, serviceContext } from './member.js';
import { settingsOf, settingsSchema } from './settings.js';

const budgetSchema = z.object({
  scope: z.enum(['key', 'user', 'team', 'org']),
  period: z.enum(['day', 'month', 'total']),
  remaining_usd: z.string(),
  /** Only for the caller's own key and user budgets (product.md §6): team and org figures are for admins. */
  spent_usd: z.string().optional(),
  limit_usd: z.string().optional(),
  resets_at: z.string().nullable(),
});

const profileSchema = z.object({
  id: z.string(),
  name: z.string(),
  email: z.string().nullable(),
  role: z.enum(['admin', 'member', 'service']),
  team: z.string().nullable(),
  byok: byokSchema,
  budgets: z.array(budgetSchema),
  models: z
    .array(z.string())
    .meta({ description: 'models the gateway serves (priced, and in claude.models_allowed when set)' }),
});

/**
 * A budget as the caller may see it, by the rule budget refusals follow (gateway/refusals.ts
 * `seesSpendOf`): spent and limit for their own key and user scopes, and for every scope when they are
 * an admin; what remains of the others.
 */
function budgetJson(b: BudgetFigures, member: Member): z.input<typeof budgetSchema> {
  const own = member.role === 'admin' || b.scope === 'key' || b.scope === 'user';
  return {
    scope: b.scope,
    period: b.period,
    remaining_usd: usdOut(b.remainingMicro),
    ...(own ? { spent_usd: usdOut(b.spentMicro + b.reservedMicro), limit_usd: usdOut(b.limitMicro) } : {}),
    resets_at: isoOrNull(b.resetsAt),
  };
}

async function budgetsOfMember(ctx: OpContext, member: Member): Promise<BudgetFigures[]> {
  const db = ctx.installation.db;
  const now = ctx.now();
  const live = ctx.budgets;
  // A dashboard session calls with no key: only the person's own scopes apply then.
  const key =
    member.keyId === null
      ? null
      : await db.kysely
          .selectFrom('gateway_keys')
          .select('lineage_id')
          .where('id', '=', member.keyId)
          .executeTakeFirst();
  const cap = ctx.config.claude.max_monthly_spend_micro;
  const scopes = [
    // A key's budget belongs to its lineage (the key and its rotations), as the gateway counts it.
    member.keyId === null
      ? Promise.resolve([])
      : budgetFigures(db, live, 'key', key?.lineage_id ?? member.keyId, now),
    budgetFigures(db, live, 'user', member.userId, now),
    member.teamId === null ? Promise.resolve([]) : budgetFigures(db, live, 'team', member.teamId, now),
    budgetFigures(db, live, 'org', ctx.installation.orgId, now, cap === null ? {} : { month: cap }),
  ];
  return (await Promise.all(scopes)).flat();
}

export const profileOps = [
  defineOp({
    id: 'me.get',
    method: 'GET',
    path: '/api/v1/me',
    tag: 'me',
    summary: 'Your profile, role and team, and what remains of every budget that applies to you',
    response: profileSchema,
    run: async (ctx) => {
      const member = memberOf(ctx);
      const row = await ctx.installation.db.kysely
        .selectFrom('users')
        .leftJoin('teams', 'teams.id', 'users.team_id')
        .select([
          'users.id',
          'users.name',
          'users.email',
          'users.role',
          'users.byok',
          'teams.name as team_name',
          'teams.byok as team_byok',
        ])
        .where('users.id', '=', member.userId)
        .executeTakeFirst();
      if (!row) throw new AppError('not_found', 'no such user');
      return {
        id: row.id,
        name: row.name,
        email: row.email,
        role: row.role,
        team: row.team_name ?? null,
        // The policy in force: the user's own, else the team's, else the default.
        byok: row.byok ?? row.team_byok ?? 'preferred',
        budgets: (await budgetsOfMember(ctx, member)).map((b) => budgetJson(b, member)),
        models: servedModels(ctx),
      };
    },
  }),
  defineOp({
    id: 'me.settings.get',
    method: 'GET',
    path: '/api/v1/me/settings',
    tag: 'me',
    summary: 'Your settings: which of your own credentials are stored (hints only) and your preferred model',
    response: settingsSchema,
    run: async (ctx) => settingsOf(ctx, memberOf(ctx).userId),
  }),
  defineOp({
    id: 'me.settings.update',
    method: 'PATCH',
    path: '/api/v1/me/settings',
    tag: 'me',
    summary: 'Set your preferred model (one the gateway prices and allows), or null for the default',
    body: z.strictObject({ preferredModel: z.string().min(1).max(200).nullable() }),
    response: settingsSchema,
    run: async (ctx, { body }) => {
      const member = memberOf(ctx);
      const model = body.preferredModel;
      if (model !== null) checkModel(ctx, model);
      await change(serviceContext(ctx), ctx.actor, async (u) => {
        await u.tx
          .updateTable('users')
          .set({ preferred_model: model })
          .where('id', '=', member.userId)
          .execute();
        await u.audit('me.settings.update', 'user', member.userId, { preferred_model: model });
        await u.changed('user', member.userId);
      });
      return settingsOf(ctx, member.userId);
    },
  }),
];

/** A preferred model must be one the gateway would serve: priced, and allowed when a list is configured. */
/** The bare ids of the models a request may name: priced, and allowed when a list is configured. */
function servedModels(ctx: OpContext): string[] {
  const priced = createPriceBook(ctx.config.pricing).models();
  const allowed = ctx.config.claude.models_allowed.map(bareModelId);
  return allowed.length === 0 ? priced : priced.filter((m) => allowed.includes(m));
}

function checkModel(ctx: OpContext, model: string): void {
  const priced = createPriceBook(ctx.config.pricing).lookup(model) !== null;
  const allowed = ctx.config.claude.models_allowed;
  const permitted = allowed.length === 0 || allowed.map(bareModelId).includes(bareModelId(model));
  if (!priced || !permitted)
    throw new AppError(
      'invalid_input',
      `preferredModel: ${JSON.stringify(model.slice(0, 80))} is not a model this gateway serves`,
      { fields: ['preferredModel'] },
    );
}
