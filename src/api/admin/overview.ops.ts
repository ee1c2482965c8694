// The dashboard's overview as one admin operation (GET /admin/v1/overview): month-to-date spend against
// the org cap and team budgets, 30 days of spend per day and model in usage.timezone, top users and
// keys, totals and alerts. See src/usage/overview.ts.
import { z } from 'zod/v4';
import { alertLog } from '../../alerts/alert.repo.js';
import { buildOverview } from '../../usage/overview.js';
import { defineOp } from '../operation.js';
import { alertLogSchema } from './alert-log.schema.js';

const micro = z.number().int();
const sums = {
  requests: z.number().int(),
  errors: z.number().int(),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  cache_write_5m_tokens: z.number().int(),
  cache_write_1h_tokens: z.number().int(),
  cache_read_tokens: z.number().int(),
  web_search_requests: z.number().int(),
  cost_micro: micro.meta({ description: 'micro-USD' }),
  saved_micro: micro.meta({ description: 'what prompt caching saved, micro-USD' }),
  estimated: z.number().int().meta({ description: 'requests charged at a bound' }),
};
const budgetLine = z.object({
  scope: z.enum(['org', 'team', 'user', 'key']),
  id: z.string(),
  name: z.string().nullable(),
  period: z.enum(['day', 'month', 'total']),
  limit_micro_usd: micro,
  spent_micro_usd: micro,
  reserved_micro_usd: micro,
  remaining_micro_usd: micro,
});

export const overviewSchema = z.object({
  timezone: z.string().meta({ description: 'usage.timezone: the zone the days are cut in' }),
  now: z.string(),
  month: z.object({
    start: z.string().meta({ description: 'start of this UTC month (budgets count UTC months)' }),
    spent_micro_usd: micro,
    org_cap: budgetLine.nullable(),
    teams: z.array(budgetLine),
  }),
  days: z.array(z.string()).meta({ description: 'the last 30 days, YYYY-MM-DD in usage.timezone' }),
  by_model: z.array(z.object({ model: z.string().nullable(), cost_micro_usd: z.array(micro) })),
  top_users: z.array(z.object({ id: z.string(), name: z.string().nullable(), ...sums })),
  top_keys: z.array(
    z.object({ id: z.string(), name: z.string().nullable(), user: z.string().nullable(), ...sums }),
  ),
  totals: z.object(sums),
  alerts: z.array(
    z.object({
      kind: z.enum(['budget', 'credential', 'key_age', 'credential_age']),
      severity: z.enum(['warning', 'critical']),
      message: z.string(),
      object: z.object({
        type: z.enum(['org', 'team', 'user', 'key', 'credential']),
        id: z.string(),
        name: z.string().nullable(),
      }),
    }),
  ),
  alert_log: alertLogSchema.meta({
    description: 'alerts raised (budget crossings, invalid credentials, ages) and their webhook delivery',
  }),
});

export const overviewOps = [
  defineOp({
    id: 'usage.overview',
    method: 'GET',
    path: '/admin/v1/overview',
    tag: 'usage',
    summary: 'Spend at a glance: this month against caps, 30 days by model, top users and keys, alerts',
    response: overviewSchema,
    run: async (ctx) => {
      const { services, installation, config } = ctx;
      // The highest alert threshold below 100% marks a budget as near its limit (default 0.8).
      const near = config.alerts.thresholds.filter((t) => t < 1).at(-1) ?? 0.8;
      const overview = await buildOverview(
        {
          db: installation.db,
          live: ctx.budgets,
          orgId: installation.orgId,
          timeZone: config.usage.timezone,
          nearShare: near,
          keyMaxAgeDays: config.security.key_max_age_days,
          budgets: () => services.budgets.list(),
          keys: () => services.keys.list(),
          credentials: () => services.credentials.list(),
          names: async (table, ids) => {
            if (ids.length === 0) return new Map();
            const rows = await installation.db.kysely
              .selectFrom(table)
              .select(['id', 'name'])
              .where('id', 'in', [...ids])
              .execute();
            return new Map(rows.map((r) => [r.id, r.name]));
          },
        },
        ctx.now(),
      );
      const log = await alertLog(installation.db.kysely, config.alerts.webhook_url !== null);
      return { ...overview, alert_log: log };
    },
  }),
];
