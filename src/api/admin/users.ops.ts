// Admin operations on users (people and service accounts).
import { z } from 'zod/v4';
import { USER_ROLES, type UserView } from '../../identity/user.service.js';
import { defineOp } from '../operation.js';
import { pageList, pageOf, pageQuery } from '../pagination.js';
import {
  byokSchema,
  iso,
  isoOrNull,
  nameSchema,
  refSchema,
  timeOutput,
  usdOrNone,
  usdOrNull,
} from '../schemas.js';

const roleSchema = z.enum(USER_ROLES);

/** The JSON of a user: the fields `user … --json` always printed, plus byok and preferred_model. */
export const userSchema = z.object({
  id: z.string(),
  name: z.string(),
  email: z.string().nullable(),
  role: roleSchema,
  team: z.string().nullable(),
  monthly_budget_usd: z.string().nullable(),
  active_keys: z.number().int(),
  created_at: timeOutput,
  byok: byokSchema.nullable().meta({ description: "the user's own policy; null = the team's applies" }),
  preferred_model: z.string().nullable(),
  disabled_at: timeOutput.nullable(),
  password_set: z.boolean(),
  sso: z.boolean().meta({ description: 'signs in through the identity provider (OIDC)' }),
  key_ceiling: z
    .string()
    .nullable()
    .meta({ description: 'key profile bounding the keys the person issues themselves; null = the default' }),
});

export function userJson(u: UserView): z.input<typeof userSchema> {
  return {
    id: u.id,
    name: u.name,
    email: u.email,
    role: u.role,
    team: u.team,
    monthly_budget_usd: usdOrNull(u.monthlyBudgetMicro),
    active_keys: u.activeKeys,
    created_at: iso(u.createdAt),
    byok: u.byok,
    preferred_model: u.preferredModel,
    disabled_at: isoOrNull(u.disabledAt),
    password_set: u.passwordSet,
    sso: u.sso,
    key_ceiling: u.keyCeiling,
  };
}

export const removedUserSchema = z.object({
  id: z.string(),
  name: z.string(),
  removed: z.literal(true),
  revoked_keys: z.number().int(),
  removed_credentials: z.number().int(),
});

export const purgedUserSchema = z.object({
  id: z.string(),
  purged: z.literal(true),
  pseudonym: z.string().meta({ description: "the name the person's usage and audit records now carry" }),
  revoked_keys: z.number().int(),
  shredded_credentials: z.number().int(),
  ended_sessions: z.number().int(),
});

const userRef = z.strictObject({ user: refSchema.meta({ description: 'user name or id' }) });
const emailSchema = z.string().max(254);
const teamRefSchema = refSchema.meta({ description: 'team name or id' });

export const userOps = [
  defineOp({
    id: 'users.list',
    method: 'GET',
    path: '/admin/v1/users',
    tag: 'users',
    summary: 'List users (ordered by name)',
    query: z.strictObject({
      ...pageQuery,
      team: teamRefSchema.optional().meta({ description: 'only members of this team (name or id)' }),
      role: roleSchema.optional(),
      name_prefix: z
        .string()
        .max(64)
        .optional()
        .meta({ description: 'only users whose name starts with this' }),
    }),
    response: pageOf(userSchema),
    run: async (ctx, { query }) => {
      const users = (
        await ctx.services.users.list(query.team === undefined ? {} : { team: query.team })
      ).filter(
        (u) =>
          (query.role === undefined || u.role === query.role) &&
          (query.name_prefix === undefined || u.name.startsWith(query.name_prefix)),
      );
      const page = pageList(users, (u) => [u.name, u.id], query, 2);
      return { items: page.rows.map(userJson), next_cursor: page.next_cursor };
    },
  }),
  defineOp({
    id: 'users.create',
    method: 'POST',
    path: '/admin/v1/users',
    tag: 'users',
    summary: 'Create a user (monthly_budget_usd omitted: claude.per_coder_monthly_limit_usd; null: none)',
    status: 201,
    body: z.strictObject({
      name: nameSchema,
      email: emailSchema.nullable().optional(),
      role: roleSchema.optional(),
      team: teamRefSchema.nullable().optional(),
      monthly_budget_usd: usdOrNone.optional(),
      byok: byokSchema.nullable().optional(),
    }),
    response: userSchema,
    run: async (ctx, { body }) =>
      userJson(
        await ctx.services.users.add(ctx.actor, {
          name: body.name,
          email: body.email ?? null,
          role: body.role ?? 'member',
          team: body.team ?? null,
          // Omitted takes the configured default; null is "no budget".
          ...(body.monthly_budget_usd === undefined ? {} : { monthlyBudgetMicro: body.monthly_budget_usd }),
          byok: body.byok ?? null,
        }),
      ),
  }),
  defineOp({
    id: 'users.get',
    method: 'GET',
    path: '/admin/v1/users/{user}',
    tag: 'users',
    summary: 'Show a user',
    params: userRef,
    response: userSchema,
    run: async (ctx, { params }) => userJson(await ctx.services.users.show(params.user)),
  }),
  defineOp({
    id: 'users.update',
    method: 'PATCH',
    path: '/admin/v1/users/{user}',
    tag: 'users',
    summary:
      "Change a user's email (null clears), role, team (null: none), monthly budget (null removes), byok policy (null: the team's) or key ceiling (a key profile; null: the default)",
    params: userRef,
    body: z.strictObject({
      email: emailSchema.nullable().optional(),
      role: roleSchema.optional(),
      team: teamRefSchema.nullable().optional(),
      monthly_budget_usd: usdOrNone.optional(),
      byok: byokSchema.nullable().optional(),
      key_ceiling: refSchema.nullable().optional().meta({
        description: 'key profile bounding the keys the person may issue themselves; null: the default',
      }),
    }),
    response: userSchema,
    run: async (ctx, { params, body }) => {
      // An unknown profile is a 404 naming it (profiles.get says so).
      const ceiling =
        body.key_ceiling === undefined || body.key_ceiling === null
          ? body.key_ceiling
          : (await ctx.services.profiles.get(body.key_ceiling)).id;
      return userJson(
        await ctx.services.users.update(ctx.actor, params.user, {
          ...(body.email === undefined ? {} : { email: body.email }),
          ...(body.role === undefined ? {} : { role: body.role }),
          ...(body.team === undefined ? {} : { team: body.team }),
          ...(body.monthly_budget_usd === undefined ? {} : { monthlyBudgetMicro: body.monthly_budget_usd }),
          ...(body.byok === undefined ? {} : { byok: body.byok }),
          ...(ceiling === undefined ? {} : { keyCeilingId: ceiling }),
        }),
      );
    },
  }),
  defineOp({
    id: 'users.remove',
    method: 'DELETE',
    path: '/admin/v1/users/{user}',
    tag: 'users',
    summary: 'Remove a user: their gateway keys are revoked and their own credentials destroyed',
    params: userRef,
    response: removedUserSchema,
    run: async (ctx, { params }) => {
      const user = await ctx.services.users.get(params.user);
      const result = await ctx.services.users.remove(ctx.actor, user.id);
      return {
        id: result.id,
        name: user.name,
        removed: true as const,
        revoked_keys: result.revokedKeys,
        removed_credentials: result.removedCredentials,
      };
    },
  }),
  defineOp({
    id: 'users.purge',
    method: 'POST',
    path: '/admin/v1/users/{user}/purge',
    tag: 'users',
    summary:
      "Erase a person's personal data (also a removed person's): keys revoked, own credentials shredded, their audit fields unreadable; usage stays under a pseudonym",
    params: userRef,
    response: purgedUserSchema,
    run: async (ctx, { params }) => {
      const result = await ctx.services.userPurge.purge(ctx.actor, params.user);
      return {
        id: result.id,
        purged: true as const,
        pseudonym: result.pseudonym,
        revoked_keys: result.revokedKeys,
        shredded_credentials: result.shreddedCredentials,
        ended_sessions: result.endedSessions,
      };
    },
  }),
];
