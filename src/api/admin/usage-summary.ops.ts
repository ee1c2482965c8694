// `GET /admin/v1/usage/summary`, what `tollgate usage --summary` prints: this UTC month so far per user
// and per model (the sums `usage --json` has, with the same names), the totals, and every org, team and
// user budget with its spent / reserved / remaining. See src/usage/summary.ts.
import { z } from 'zod/v4';
import { formatUsd } from '../../lib/money.js';
import { buildSummary } from '../../usage/summary.js';
import { type UsageSums, usageRow } from '../../usage/usage.repo.js';
import { defineOp } from '../operation.js';
import { usdOut, usdOutput } from '../schemas.js';

const count = z.number().int();
const sums = {
  requests: count,
  errors: count,
  input_tokens: count,
  output_tokens: count,
  cache_write_5m_tokens: count,
  cache_write_1h_tokens: count,
  cache_read_tokens: count,
  web_search_requests: count,
  cost_micro_usd: count,
  cost_usd: usdOutput,
  saved_micro_usd: count.meta({
    description: 'what prompt caching saved against uncached prices, micro-USD',
  }),
  saved_usd: usdOutput,
  estimated_requests: count.meta({ description: 'requests charged at a bound (usage not shown upstream)' }),
};

const budgetSchema = z.object({
  scope: z.enum(['org', 'team', 'user', 'key']),
  target: z.string().nullable().meta({ description: "the team's or user's name; null for the org" }),
  target_id: z.string(),
  period: z.enum(['day', 'month', 'total']),
  limit_usd: usdOutput,
  spent_usd: usdOutput,
  reserved_usd: usdOutput.meta({ description: 'held by requests in flight on the serving process' }),
  remaining_usd: usdOutput,
  limit_micro_usd: count,
  spent_micro_usd: count,
  reserved_micro_usd: count,
  remaining_micro_usd: count,
});

export const usageSummarySchema = z.object({
  month: z.string().meta({ description: 'the UTC month, YYYY-MM (budgets count UTC months)' }),
  since: z.string().meta({ description: 'the start of the UTC month' }),
  until: z.string().meta({ description: 'now (exclusive end of the figures)' }),
  totals: z.object(sums),
  by_user: z.array(
    z.object({
      user: z.string().nullable().meta({ description: "the user's name (null for a removed user's id)" }),
      user_id: z.string().nullable(),
      ...sums,
    }),
  ),
  by_model: z.array(z.object({ model: z.string().nullable(), ...sums })),
  budgets: z
    .array(budgetSchema)
    .meta({ description: 'org, team and user budgets in their current period (key budgets: budget list)' }),
});

function sumsJson(s: UsageSums) {
  const { group: _group, ...row } = usageRow(null, s);
  return { ...row, saved_usd: formatUsd(s.saved_micro) };
}

export const usageSummaryOps = [
  defineOp({
    id: 'usage.summary',
    method: 'GET',
    path: '/admin/v1/usage/summary',
    tag: 'usage',
    summary: 'This UTC month at a glance: per user and per model, cache savings, remaining budgets',
    response: usageSummarySchema,
    run: async (ctx) => {
      const { installation, services, config } = ctx;
      const now = ctx.now();
      const s = await buildSummary(
        {
          db: installation.db,
          live: ctx.budgets,
          timeZone: config.usage.timezone,
          budgets: () => services.budgets.list(),
          userNames: async (ids) => {
            if (ids.length === 0) return new Map();
            const rows = await installation.db.kysely
              .selectFrom('users')
              .select(['id', 'name'])
              .where('id', 'in', [...ids])
              .execute();
            return new Map(rows.map((r) => [r.id, r.name]));
          },
        },
        now,
      );
      return {
        month: new Date(s.since).toISOString().slice(0, 7),
        since: new Date(s.since).toISOString(),
        until: new Date(now).toISOString(),
        totals: sumsJson(s.totals),
        by_user: s.byUser.map((u) => ({ user: u.name, user_id: u.id, ...sumsJson(u.sums) })),
        by_model: s.byModel.map((m) => ({ model: m.model, ...sumsJson(m.sums) })),
        budgets: s.budgets.map((b) => ({
          scope: b.scope,
          target: b.name,
          target_id: b.id,
          period: b.period,
          limit_usd: usdOut(b.limit_micro_usd),
          spent_usd: usdOut(b.spent_micro_usd),
          reserved_usd: usdOut(b.reserved_micro_usd),
          remaining_usd: usdOut(b.remaining_micro_usd),
          limit_micro_usd: b.limit_micro_usd,
          spent_micro_usd: b.spent_micro_usd,
          reserved_micro_usd: b.reserved_micro_usd,
          remaining_micro_usd: b.remaining_micro_usd,
        })),
      };
    },
  }),
];
