// The member's own gateway keys: list (hints only) and revoke. Another user's key answers exactly as
// an unknown one (404), so ids cannot be probed. Issuing needs a dashboard session and stays within
// the person's key ceiling (self-issue.ts).
import { z } from 'zod/v4';
import type { KeyView } from '../../keys/key.service.js';
import { AppError } from '../../lib/errors.js';
import { ENVIRONMENTS } from '../../vault/credential.service.js';
import { durationInput, policyInput } from '../admin/policy.schemas.js';
import { defineOp, type OpContext } from '../operation.js';
import { pageList, pageOf, pageQuery } from '../pagination.js';
import { isoOrNull, nameSchema, refSchema, timeOutput, usdInput, usdOrNull } from '../schemas.js';
import { memberOf } from './member.js';
import { issueOwnKey } from './self-issue.js';

/** The fields of `key list --json` a member may see of their own keys (no secret: hint only). */
const memberKeySchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  hint: z.string(),
  status: z.string(),
  scopes: z.array(z.string()),
  models: z.array(z.string()).nullable(),
  monthly_budget_usd: z.string().nullable(),
  daily_budget_usd: z.string().nullable(),
  environment: z.string().nullable(),
  expires_at: z.string().nullable(),
  created_at: timeOutput,
  revoked_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
  lineage: z.string(),
});

function memberKeyJson(k: KeyView): z.input<typeof memberKeySchema> {
  return {
    id: k.id,
    name: k.name,
    hint: k.hint,
    status: k.status,
    scopes: [...k.policy.scopes],
    models: k.policy.models === null ? null : [...k.policy.models],
    monthly_budget_usd: usdOrNull(k.policy.monthlyBudgetMicro),
    daily_budget_usd: usdOrNull(k.policy.dailyBudgetMicro),
    environment: k.policy.environment,
    expires_at: isoOrNull(k.expiresAt),
    created_at: new Date(k.createdAt).toISOString(),
    revoked_at: isoOrNull(k.revokedAt),
    last_used_at: isoOrNull(k.lastUsedAt),
    lineage: k.lineageId,
  };
}

const selfIssueBody = z.strictObject({
  name: nameSchema.optional(),
  models: policyInput.models.unwrap().unwrap().optional(),
  tools: policyInput.tools.unwrap().unwrap().optional(),
  max_tokens: policyInput.max_tokens.unwrap().unwrap().optional(),
  max_cost_per_request_usd: usdInput.optional(),
  monthly_budget_usd: usdInput.optional(),
  daily_budget_usd: usdInput.optional(),
  expires: durationInput
    .optional()
    .meta({ description: 'lifetime, e.g. 30d (default and most: the ceiling)' }),
  environment: z.enum(ENVIRONMENTS).optional(),
  scopes: policyInput.scopes,
});

/** The caller's own key, or 404 with the same words as for a key that does not exist. */
async function ownKey(ctx: OpContext, id: string): Promise<KeyView> {
  const member = memberOf(ctx);
  const missing = () => new AppError('not_found', `no gateway key with id ${id.slice(0, 80)}`);
  const key = await ctx.services.keys.show(id).catch((error: unknown) => {
    if (error instanceof AppError && error.code === 'not_found') throw missing();
    throw error;
  });
  if (key.userId !== member.userId) throw missing();
  return key;
}

export const keyOps = [
  defineOp({
    id: 'me.keys.list',
    method: 'GET',
    path: '/api/v1/me/keys',
    tag: 'me',
    summary: 'Your gateway keys (hints only), oldest first',
    query: z.strictObject({ ...pageQuery }),
    response: pageOf(memberKeySchema),
    run: async (ctx, { query }) => {
      const member = memberOf(ctx);
      const keys = await ctx.services.keys.list({ user: member.userId });
      const page = pageList(keys, (k) => [k.createdAt, k.id], query, 2);
      return { items: page.rows.map(memberKeyJson), next_cursor: page.next_cursor };
    },
  }),
  defineOp({
    id: 'me.keys.revoke',
    method: 'DELETE',
    path: '/api/v1/me/keys/{id}',
    tag: 'me',
    summary: 'Revoke one of your gateway keys (it stops at once)',
    params: z.strictObject({ id: refSchema }),
    response: memberKeySchema,
    run: async (ctx, { params }) => {
      const key = await ownKey(ctx, params.id);
      return memberKeyJson(await ctx.services.keys.revoke(ctx.actor, key.id));
    },
  }),
  defineOp({
    id: 'me.keys.issue',
    method: 'POST',
    path: '/api/v1/me/keys',
    tag: 'me',
    summary:
      'Issue yourself a key (shown once) within your key ceiling; needs a signed-in dashboard session (a gateway key cannot mint keys)',
    status: 201,
    body: selfIssueBody,
    response: memberKeySchema.extend({
      key: z.string().meta({ description: 'the gateway key (tg_…); shown only in this answer' }),
    }),
    run: async (ctx, { body }) => {
      const member = memberOf(ctx);
      // Checked before anything is read: a leaked key must not learn even whether its body would pass.
      if (member.sessionId === undefined)
        throw new AppError(
          'forbidden',
          'issuing a key needs a signed-in dashboard session; a gateway key cannot mint keys',
        );
      const issued = await issueOwnKey(ctx, member, body);
      return { ...memberKeyJson(issued), key: issued.key };
    },
  }),
];
