// Admin operations on gateway keys. A key itself is in the answer of issue and rotate only, once;
// every other answer carries its hint.
import { z } from 'zod/v4';
import type { KeyView } from '../../keys/key.service.js';
import { KEY_SCOPES } from '../../keys/key-policy.js';
import { policyWithProfile } from '../../keys/profile.service.js';
import { ENVIRONMENTS } from '../../vault/credential.service.js';
import { defineOp } from '../operation.js';
import { pageList, pageOf, pageQuery } from '../pagination.js';
import { iso, isoOrNull, nameSchema, refSchema, timeOutput, usdOrNone, usdOrNull } from '../schemas.js';
import { durationInput, policyFromInput, policyInput } from './policy.schemas.js';

/** The JSON of `key show --json` (and of every key in an answer). */
export const keySchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  user: z.string(),
  user_id: z.string(),
  hint: z.string(),
  status: z.enum(['active', 'revoked', 'expired']),
  scopes: z.array(z.enum(KEY_SCOPES)),
  models: z.array(z.string()).nullable(),
  tools: z.array(z.string()).nullable(),
  max_tokens: z.number().int().nullable(),
  monthly_budget_usd: z.string().nullable(),
  daily_budget_usd: z.string().nullable(),
  max_cost_per_request_usd: z.string().nullable(),
  rpm: z.number().int().nullable(),
  input_tpm: z.number().int().nullable(),
  output_tpm: z.number().int().nullable(),
  concurrency: z.number().int().nullable(),
  environment: z.enum(ENVIRONMENTS).nullable(),
  credential: z.string().nullable(),
  expires_at: timeOutput.nullable(),
  created_at: timeOutput,
  created_by: z.string(),
  revoked_at: timeOutput.nullable(),
  rotated_to: z.string().nullable(),
  lineage: z.string().meta({ description: 'first key of its rotation chain; key budgets belong to it' }),
  last_used_at: timeOutput.nullable(),
});

/** Issue and rotate: the key JSON and the key itself, shown this once. */
export const issuedKeySchema = keySchema.extend({
  key: z.string().meta({ description: 'the gateway key (tg_…); shown only in this answer' }),
});

export function keyJson(k: KeyView): z.input<typeof keySchema> {
  const p = k.policy;
  return {
    id: k.id,
    name: k.name,
    user: k.user,
    user_id: k.userId,
    hint: k.hint,
    status: k.status,
    scopes: p.scopes,
    models: p.models,
    tools: p.tools,
    max_tokens: p.maxTokens,
    monthly_budget_usd: usdOrNull(p.monthlyBudgetMicro),
    daily_budget_usd: usdOrNull(p.dailyBudgetMicro),
    max_cost_per_request_usd: usdOrNull(p.maxCostPerRequestMicro),
    rpm: p.rpm,
    input_tpm: p.inputTpm,
    output_tpm: p.outputTpm,
    concurrency: p.concurrency,
    environment: p.environment,
    credential: k.credential,
    expires_at: isoOrNull(k.expiresAt),
    created_at: iso(k.createdAt),
    created_by: k.createdBy,
    revoked_at: isoOrNull(k.revokedAt),
    rotated_to: k.rotatedTo,
    lineage: k.lineageId,
    last_used_at: isoOrNull(k.lastUsedAt),
  };
}

const keyRef = z.strictObject({ key: refSchema.meta({ description: 'gateway key id (key_…)' }) });

export const keyOps = [
  defineOp({
    id: 'keys.list',
    method: 'GET',
    path: '/admin/v1/keys',
    tag: 'keys',
    summary: 'List gateway keys (hints only), oldest first',
    query: z.strictObject({
      ...pageQuery,
      user: refSchema.optional().meta({ description: 'only the keys of this user (name or id)' }),
      status: z.enum(['active', 'revoked', 'expired']).optional(),
    }),
    response: pageOf(keySchema),
    run: async (ctx, { query }) => {
      const keys = (await ctx.services.keys.list(query.user ? { user: query.user } : {})).filter(
        (k) => query.status === undefined || k.status === query.status,
      );
      const page = pageList(keys, (k) => [k.createdAt, k.id], query, 2);
      return { items: page.rows.map(keyJson), next_cursor: page.next_cursor };
    },
  }),
  defineOp({
    id: 'keys.issue',
    method: 'POST',
    path: '/admin/v1/keys',
    tag: 'keys',
    summary:
      'Issue a gateway key (shown once). With a profile, its policy is the base and the fields given override it',
    status: 201,
    body: z.strictObject({
      user: refSchema.meta({ description: 'the user or service the key belongs to' }),
      name: nameSchema.optional(),
      profile: refSchema.optional().meta({ description: 'a key profile to start from' }),
      ...policyInput,
      credential: refSchema.optional().meta({ description: 'pin this anthropic credential' }),
    }),
    response: issuedKeySchema,
    run: async (ctx, { body }) => {
      const profile = body.profile === undefined ? null : await ctx.services.profiles.show(body.profile);
      const { policy, expiresInMs } = policyWithProfile(profile?.policy ?? null, policyFromInput(body));
      const issued = await ctx.services.keys.issue(ctx.actor, {
        user: body.user,
        name: body.name ?? null,
        policy,
        expiresInMs,
        credential: body.credential ?? null,
        profile: profile?.name ?? null,
      });
      return { ...keyJson(issued), key: issued.key };
    },
  }),
  defineOp({
    id: 'keys.get',
    method: 'GET',
    path: '/admin/v1/keys/{key}',
    tag: 'keys',
    summary: 'Show a gateway key and its policy (hint only)',
    params: keyRef,
    response: keySchema,
    run: async (ctx, { params }) => keyJson(await ctx.services.keys.show(params.key)),
  }),
  defineOp({
    id: 'keys.rotate',
    method: 'POST',
    path: '/admin/v1/keys/{key}/rotate',
    tag: 'keys',
    summary: 'Issue a replacement with the same policy (shown once); the old key stops now or after grace',
    status: 201,
    params: keyRef,
    body: z.strictObject({
      grace: durationInput.optional().meta({ description: 'keep the old key working this long, e.g. 24h' }),
    }),
    response: issuedKeySchema.extend({ replaces: z.string() }),
    run: async (ctx, { params, body }) => {
      const issued = await ctx.services.keys.rotate(ctx.actor, params.key, body.grace ?? null);
      return { ...keyJson(issued), key: issued.key, replaces: params.key };
    },
  }),
  defineOp({
    id: 'keys.revoke',
    method: 'POST',
    path: '/admin/v1/keys/{key}/revoke',
    tag: 'keys',
    summary: 'Revoke a gateway key (a running server refuses it within a second)',
    params: keyRef,
    response: keySchema,
    run: async (ctx, { params }) => keyJson(await ctx.services.keys.revoke(ctx.actor, params.key)),
  }),
  defineOp({
    id: 'keys.budget',
    method: 'PUT',
    path: '/admin/v1/keys/{key}/budget',
    tag: 'keys',
    summary:
      "Set (or with null remove) a key's daily or monthly budget; it applies to the key's whole rotation lineage",
    params: keyRef,
    body: z.strictObject({ period: z.enum(['day', 'month']), limit_usd: usdOrNone }),
    response: keySchema,
    run: async (ctx, { params, body }) =>
      keyJson(await ctx.services.keys.setKeyBudget(ctx.actor, params.key, body.period, body.limit_usd)),
  }),
];
