// Admin operations on upstream credentials. A secret goes in (create, rotate) and never comes out:
// every answer carries the credential's hint only.
import { z } from 'zod/v4';
import { alertLog } from '../../alerts/alert.repo.js';
import { AppError } from '../../lib/errors.js';
import { dispatcherOption } from '../../outbound/outbound.js';
import {
  type CredentialView,
  ENVIRONMENTS,
  type OwnerRef,
  PROVIDERS,
  parseOwner,
} from '../../vault/credential.service.js';
import { CHECK_RESULTS, credentialStatuses, keyAges } from '../../vault/status.service.js';
import { defineOp } from '../operation.js';
import { pageList, pageOf, pageQuery } from '../pagination.js';
import { iso, isoOrNull, nameSchema, refSchema, timeOutput } from '../schemas.js';
import { alertLogSchema } from './alert-log.schema.js';
import { durationInput } from './policy.schemas.js';

/** The JSON of `credential show --json`. */
export const credentialSchema = z.object({
  id: z.string(),
  name: z.string(),
  provider: z.enum(PROVIDERS),
  owner: z.string().meta({ description: 'org, team:NAME or user:NAME' }),
  environment: z.enum(ENVIRONMENTS).nullable(),
  status: z.enum(['active', 'inactive', 'invalid']),
  preferred: z.boolean().meta({ description: "the one `use` picked among its owner's credentials" }),
  hint: z.string().meta({ description: 'non-secret hint (Anthropic keys: first 16 and last 4 characters)' }),
  created_at: timeOutput,
  updated_at: timeOutput,
  last_used_at: timeOutput.nullable(),
  rotated_at: timeOutput.nullable(),
  retire_at: timeOutput.nullable().meta({ description: 'a retiring previous secret: when it is destroyed' }),
});

export function credentialJson(v: CredentialView): z.input<typeof credentialSchema> {
  return {
    id: v.id,
    name: v.name,
    provider: v.provider,
    owner: v.owner,
    environment: v.environment,
    status: v.status,
    preferred: v.preferred,
    hint: v.hint,
    created_at: iso(v.createdAt),
    updated_at: iso(v.updatedAt),
    last_used_at: isoOrNull(v.lastUsedAt),
    rotated_at: isoOrNull(v.rotatedAt),
    retire_at: isoOrNull(v.retireAt),
  };
}

/** The JSON of `tollgate status --json`. */
const statusSchema = z.object({
  credentials: z.array(
    z.object({
      name: z.string(),
      provider: z.enum(PROVIDERS),
      owner: z.string(),
      environment: z.enum(ENVIRONMENTS).nullable(),
      hint: z.string(),
      stored_status: z.string(),
      check: z.enum(CHECK_RESULTS).meta({ description: 'the result of the free upstream check' }),
      code: z
        .string()
        .nullable()
        .meta({ description: 'the upstream status or network code behind an ERROR' }),
      detail: z.string(),
      age_days: z.number().int(),
      rotate_due: z.boolean(),
      rotate_command: z.string().nullable(),
    }),
  ),
  alerts: alertLogSchema,
  keys_due: z.array(
    z.object({
      id: z.string(),
      name: z.string().nullable(),
      user: z.string(),
      hint: z.string(),
      age_days: z.number().int(),
      rotate_command: z.string(),
    }),
  ),
});

/** `org`, `team:NAME` or `user:NAME`. */
const ownerInput = z
  .string()
  .max(200)
  .transform((text, ctx): OwnerRef => {
    try {
      return parseOwner(text);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      ctx.addIssue({ code: 'custom', message: 'must be org, team:NAME or user:NAME' });
      return z.NEVER;
    }
  })
  .meta({ description: 'org, team:NAME or user:NAME' });

/**
 * A secret in a request body. Its shape (prefix, whitespace, length) is judged by the vault with the
 * CLI's friendly messages; the bound here only keeps absurd bodies out.
 */
const secretInput = z
  .string()
  .min(1, 'must not be empty')
  .max(64 * 1024)
  .meta({ description: 'the secret; stored encrypted, never returned', writeOnly: true });

const credentialRef = z.strictObject({
  credential: refSchema.meta({ description: 'credential name or id' }),
});

const validateInput = z
  .boolean()
  .optional()
  .meta({ description: 'check the key with a free upstream call first (default true)' });

const toggles = [
  ['use', "Prefer this credential over its owner's others (no restart needed)"],
  ['enable', 'Make a disabled credential usable again'],
  ['disable', 'Stop using a credential without deleting it'],
] as const;

export const credentialOps = [
  defineOp({
    id: 'credentials.list',
    method: 'GET',
    path: '/admin/v1/credentials',
    tag: 'credentials',
    summary: 'List credentials (hints only, never secrets), ordered by name',
    query: z.strictObject({
      ...pageQuery,
      provider: z.enum(PROVIDERS).optional(),
      owner: ownerInput.optional(),
      status: z.enum(['active', 'inactive', 'invalid']).optional(),
      env: z.enum(ENVIRONMENTS).optional(),
    }),
    response: pageOf(credentialSchema),
    run: async (ctx, { query }) => {
      // Previous secrets whose grace period ended are destroyed first, so no list shows them.
      await ctx.services.credentials.retireDue(ctx.actor);
      const views = (
        await ctx.services.credentials.list({
          ...(query.provider ? { provider: query.provider } : {}),
          ...(query.owner ? { owner: query.owner } : {}),
        })
      ).filter(
        (v) =>
          (query.status === undefined || v.status === query.status) &&
          (query.env === undefined || v.environment === query.env),
      );
      const page = pageList(views, (v) => [v.name, v.id], query, 2);
      return { items: page.rows.map(credentialJson), next_cursor: page.next_cursor };
    },
  }),
  defineOp({
    id: 'credentials.create',
    method: 'POST',
    path: '/admin/v1/credentials',
    tag: 'credentials',
    summary:
      'Add a credential: checked (shape, then a free upstream call unless validate is false), encrypted, stored',
    status: 201,
    body: z.strictObject({
      name: nameSchema,
      provider: z.enum(PROVIDERS),
      owner: ownerInput.optional(),
      environment: z.enum(ENVIRONMENTS).nullable().optional(),
      secret: secretInput,
      validate: validateInput,
    }),
    response: credentialSchema,
    run: async (ctx, { body }) =>
      credentialJson(
        await ctx.services.credentials.add(ctx.actor, {
          name: body.name,
          provider: body.provider,
          owner: body.owner ?? { type: 'org' },
          environment: body.environment ?? null,
          secret: body.secret,
          validate: body.validate ?? true,
        }),
      ),
  }),
  defineOp({
    id: 'credentials.get',
    method: 'GET',
    path: '/admin/v1/credentials/{credential}',
    tag: 'credentials',
    summary: 'Show a credential (never its secret)',
    params: credentialRef,
    response: credentialSchema,
    run: async (ctx, { params }) => credentialJson(await ctx.services.credentials.show(params.credential)),
  }),
  defineOp({
    id: 'credentials.rotate',
    method: 'POST',
    path: '/admin/v1/credentials/{credential}/rotate',
    tag: 'credentials',
    summary:
      'Replace the secret (checked first); with grace the previous one stays usable as NAME.previous (failover only) until then',
    params: credentialRef,
    body: z.strictObject({
      secret: secretInput,
      grace: durationInput.optional(),
      validate: validateInput,
      retire: z
        .boolean()
        .optional()
        .meta({ description: "disable the old key through Anthropic's Admin API once the grace ends" }),
    }),
    response: credentialSchema.extend({
      grace_until: timeOutput.nullable().meta({ description: 'when the previous secret is destroyed' }),
    }),
    run: async (ctx, { params, body }) => {
      const grace = body.grace ?? null;
      const view = await ctx.services.credentials.rotate(
        ctx.actor,
        params.credential,
        body.secret,
        body.validate ?? true,
        grace,
        { retire: body.retire === true },
      );
      return { ...credentialJson(view), grace_until: grace === null ? null : iso(ctx.now() + grace) };
    },
  }),
  ...toggles.map(([verb, summary]) =>
    defineOp({
      id: `credentials.${verb}`,
      method: 'POST',
      path: `/admin/v1/credentials/{credential}/${verb}`,
      tag: 'credentials',
      summary,
      params: credentialRef,
      response: credentialSchema,
      run: async (ctx, { params }) =>
        credentialJson(await ctx.services.credentials[verb](ctx.actor, params.credential)),
    }),
  ),
  defineOp({
    id: 'credentials.status',
    method: 'GET',
    path: '/admin/v1/status',
    tag: 'credentials',
    summary:
      'What `tollgate status` answers: every credential checked with a free upstream call, and what is due for rotation (read-only)',
    response: statusSchema,
    run: async (ctx) => {
      const now = ctx.now();
      const maxAgeDays = ctx.config.security.key_max_age_days;
      const credentials = await credentialStatuses(
        {
          credentials: ctx.services.credentials,
          upstream: {
            baseUrl: ctx.config.upstream.anthropic_base_url,
            timeoutMs: ctx.config.upstream.validate_timeout_ms,
            ...dispatcherOption(ctx.config.upstream),
          },
          maxAgeDays,
        },
        now,
      );
      return {
        credentials,
        keys_due: keyAges(await ctx.services.keys.list(), now, maxAgeDays),
        alerts: await alertLog(ctx.installation.db.kysely, ctx.config.alerts.webhook_url !== null),
      };
    },
  }),
  defineOp({
    id: 'credentials.remove',
    method: 'DELETE',
    path: '/admin/v1/credentials/{credential}',
    tag: 'credentials',
    summary: 'Delete a credential and destroy its encrypted secret (refused while active keys pin it)',
    params: credentialRef,
    response: z.object({ id: z.string(), name: z.string(), removed: z.literal(true) }),
    run: async (ctx, { params }) => ({
      ...(await ctx.services.credentials.remove(ctx.actor, params.credential)),
      removed: true as const,
    }),
  }),
];
