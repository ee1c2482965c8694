// The organisation's Anthropic side of the bill, for the dashboard and `tollgate anthropic … --server`:
// the reconciliation of Tollgate's ledger with Anthropic's usage report (read from what `anthropic sync`
// imported, or a sync run now), Anthropic's Claude Code analytics per actor beside the matching user's
// Tollgate spend, and the spend limits Tollgate mirrors to Anthropic (read live, or set).
import { z } from 'zod/v4';
import type { LimitRow } from '../../anthropic-admin/spend-limit-plan.js';
import { defineOp } from '../operation.js';
import { timeOutput } from '../schemas.js';

const count = z.number().int();
const day = z.string().max(40).meta({ description: 'YYYY-MM-DD (UTC) or an RFC 3339 time' });

const tokens = {
  input_tokens: count,
  output_tokens: count,
  cache_write_5m_tokens: count,
  cache_write_1h_tokens: count,
  cache_read_tokens: count,
  web_search_requests: count,
};

const reconcileRowSchema = z.object({
  day: z.string(),
  credential: z
    .string()
    .nullable()
    .meta({ description: 'the Tollgate credential; null: not through Tollgate' }),
  api_key_id: z.string().nullable(),
  api_key_name: z.string().nullable(),
  model: z.string(),
  tollgate: z.object({ ...tokens, cost_micro_usd: count }),
  anthropic: z.object({
    ...tokens,
    cost_micro_usd: count.nullable().meta({ description: "Anthropic's tokens at Tollgate's prices" }),
  }),
  drift_tokens: count.meta({ description: "Anthropic's tokens minus Tollgate's" }),
  drift_micro_usd: count.nullable().meta({ description: "Anthropic's figure minus Tollgate's, micro-USD" }),
  flag: z.enum(['drift', 'not_through_tollgate', 'unpriced']).nullable(),
});

const reconciliationFields = {
  since: timeOutput,
  until: timeOutput,
  last_sync_at: timeOutput.nullable().meta({ description: 'when `anthropic sync` last ran; null: never' }),
  rows: z.array(reconcileRowSchema),
  cost_report_micro_usd: count.meta({ description: "the cost report's total over the range" }),
  priced_usage_micro_usd: count.meta({ description: "Anthropic's usage report priced by Tollgate" }),
};

export const reconciliationSchema = z.object(reconciliationFields);
export const syncResultSchema = z.object({
  ...reconciliationFields,
  imported: z.object({
    usage_rows: count,
    cost_rows: count,
    claude_code_rows: count
      .nullable()
      .meta({ description: 'null: the organisation cannot read that report' }),
  }),
});

const range = z.strictObject({ since: day.optional(), until: day.optional() });

const activitySchema = z.object({
  since: timeOutput,
  until: timeOutput,
  actors: z.array(
    z.object({
      actor: z.string().meta({ description: "the coder's email, or an API key's name" }),
      actor_kind: z.enum(['user', 'api_key']),
      days: count,
      sessions: count,
      lines_added: count,
      lines_removed: count,
      commits: count,
      pull_requests: count,
      tool_accepted: count,
      tool_rejected: count,
      estimated_micro_usd: count.meta({ description: "Anthropic's estimate" }),
      user: z.string().nullable().meta({ description: 'the Tollgate user with that email, if any' }),
      user_id: z.string().nullable(),
      tollgate_micro_usd: count.nullable().meta({ description: "that user's Tollgate spend over the range" }),
    }),
  ),
});

const limitSchema = z.object({
  scope: z.union([
    z.object({ type: z.literal('organization') }),
    z.object({ type: z.literal('workspace'), workspace_id: z.string() }),
  ]),
  team: z.string().nullable(),
  anthropic_amount_cents: z
    .string()
    .nullable()
    .meta({ description: 'integer cents; null: none or no limit' }),
  anthropic_limit_set: z.boolean(),
  anthropic_limit_id: z.string().nullable(),
  tollgate_amount_cents: z.string().nullable().meta({ description: 'what Tollgate sets, rounded down' }),
  difference_cents: count.nullable(),
  action: z.enum(['create', 'update', 'none', 'unmanaged']),
});

export const limitsSchema = z.object({ limits: z.array(limitSchema) });
export const limitsSyncSchema = z.object({ changed: z.array(limitSchema), limits: z.array(limitSchema) });

export type LimitJson = z.output<typeof limitSchema>;

export function limitJson(row: LimitRow): LimitJson {
  return {
    scope: row.scope,
    team: row.team,
    anthropic_amount_cents: row.current ?? null,
    anthropic_limit_set: row.current !== undefined,
    anthropic_limit_id: row.currentId,
    tollgate_amount_cents: row.wanted,
    difference_cents: row.differenceCents,
    action: row.action,
  };
}

export const anthropicOps = [
  defineOp({
    id: 'anthropic.reconciliation',
    method: 'GET',
    path: '/admin/v1/anthropic/reconciliation',
    tag: 'anthropic',
    summary:
      "Tollgate's ledger beside Anthropic's usage report per UTC day × credential × model, from the last syncs (default: the 7 days before one hour ago)",
    query: range,
    response: reconciliationSchema,
    run: (ctx, { query }) => ctx.services.anthropicSync.reconciliation(query),
  }),
  defineOp({
    id: 'anthropic.sync',
    method: 'POST',
    path: '/admin/v1/anthropic/sync',
    tag: 'anthropic',
    summary:
      "Import Anthropic's usage, cost and Claude Code reports for a range (idempotent), then reconcile",
    body: range,
    response: syncResultSchema,
    run: (ctx, { body }) => ctx.services.anthropicSync.sync(ctx.actor, body),
  }),
  defineOp({
    id: 'anthropic.claude_code',
    method: 'GET',
    path: '/admin/v1/anthropic/claude-code',
    tag: 'anthropic',
    summary:
      "Anthropic's Claude Code analytics per coder as imported, beside their Tollgate spend (default: the last 30 days)",
    query: range,
    response: activitySchema,
    run: (ctx, { query }) => ctx.services.claudeCode.activity(query),
  }),
  defineOp({
    id: 'anthropic.limits',
    method: 'GET',
    path: '/admin/v1/anthropic/limits',
    tag: 'anthropic',
    summary: "Anthropic's monthly spend limits beside what Tollgate would set (asks Anthropic)",
    response: limitsSchema,
    run: async (ctx) => ({ limits: (await ctx.services.spendLimits.show()).map(limitJson) }),
  }),
  defineOp({
    id: 'anthropic.limits.sync',
    method: 'POST',
    path: '/admin/v1/anthropic/limits/sync',
    tag: 'anthropic',
    summary: 'Set the Anthropic spend limits that differ from Tollgate (rounded down to the cent); audited',
    body: z.strictObject({}),
    response: limitsSyncSchema,
    run: async (ctx) => {
      const rows = await ctx.services.spendLimits.sync(ctx.actor);
      return {
        changed: rows.filter((r) => r.action === 'create' || r.action === 'update').map(limitJson),
        limits: rows.map(limitJson),
      };
    },
  }),
];
