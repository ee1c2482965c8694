// The member's own usage, grouped by day, model or key. The user filter is always the caller: the
// query takes no `user`, `team` or `key` field (unknown fields are refused), so it cannot be widened.
import { z } from 'zod/v4';
import { periodStart } from '../../budgets/periods.js';
import { parseReportDate } from '../../lib/dates.js';
import { summarise } from '../../usage/usage.repo.js';
import { defineOp } from '../operation.js';
import { memberOf } from './member.js';

const BY = ['day', 'model', 'key'] as const;

/** A row as `usage --json` prints it: the group under its own name (`day`, `model` or `key`), then the sums. */
const usageRowSchema = z.object({
  day: z.string().nullable().optional().meta({ description: 'the day in usage.timezone, YYYY-MM-DD' }),
  model: z.string().nullable().optional(),
  key: z.string().nullable().optional(),
  requests: z.number().int(),
  errors: z.number().int(),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  cache_write_5m_tokens: z.number().int(),
  cache_write_1h_tokens: z.number().int(),
  cache_read_tokens: z.number().int(),
  web_search_requests: z.number().int(),
  cost_micro_usd: z.number().int(),
  cost_usd: z.string(),
  saved_micro_usd: z.number().int(),
  estimated_requests: z.number().int(),
});

export const usageOps = [
  defineOp({
    id: 'me.usage',
    method: 'GET',
    path: '/api/v1/me/usage',
    tag: 'me',
    summary: 'Your usage since a date (default: this UTC month), by day, model or key',
    query: z.strictObject({
      since: z.string().max(40).optional().meta({
        description:
          'YYYY-MM-DD (a day in usage.timezone), ISO time or e.g. 7d (default: start of this UTC month)',
      }),
      by: z.enum(BY).default('model'),
    }),
    response: z.object({ items: z.array(usageRowSchema), next_cursor: z.null() }),
    run: async (ctx, { query }) => {
      const member = memberOf(ctx);
      const now = ctx.now();
      const zone = ctx.config.usage.timezone;
      const since =
        query.since === undefined
          ? periodStart('month', now)
          : parseReportDate(query.since, now, 'since', zone);
      const rows = await summarise(
        ctx.installation.db,
        query.by,
        {
          since,
          until: now + 1,
          userId: member.userId,
        },
        ctx.config.usage.timezone,
      );
      // Summaries are one row per group: never long enough to page.
      return { items: rows.map(({ group, ...rest }) => ({ [query.by]: group, ...rest })), next_cursor: null };
    },
  }),
];
