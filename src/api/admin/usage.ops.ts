// Admin usage queries: the ledger summed per model, user, key, team, credential or day (in
// usage.timezone). The rows
// are exactly those `tollgate usage --json` prints (the CLI calls this operation, locally or remotely).
import { z } from 'zod/v4';
import { periodStart } from '../../budgets/periods.js';
import { parseReportDate } from '../../lib/dates.js';
import { GROUPS, summarise } from '../../usage/usage.repo.js';
import { defineOp } from '../operation.js';
import { pageOf } from '../pagination.js';
import { refSchema } from '../schemas.js';

const dateText = z.string().min(1).max(40);
const count = z.number().int();

/** One row: the group field named after `by` (e.g. `model`), then the sums. */
const groupField = (g: string, value: string) =>
  z
    .string()
    .nullable()
    .optional()
    .meta({ description: `present when by=${g}: ${value} (null for requests without one)` });

/** One row: the group field named after `by` (e.g. `model`), then the sums. */
export const usageRowSchema = z.object({
  model: groupField('model', 'the model id'),
  user: groupField('user', "the user's name"),
  key: groupField('key', 'the gateway key id'),
  team: groupField('team', "the team's name"),
  credential: groupField('credential', "the credential's name"),
  day: groupField('day', 'the day in usage.timezone, YYYY-MM-DD'),
  requests: count,
  errors: count,
  input_tokens: count,
  output_tokens: count,
  cache_write_5m_tokens: count,
  cache_write_1h_tokens: count,
  cache_read_tokens: count,
  web_search_requests: count,
  cost_micro_usd: count,
  cost_usd: z.string().meta({ description: 'USD as a decimal string' }),
  saved_micro_usd: count.meta({ description: 'what prompt caching saved, in micro-USD' }),
  estimated_requests: count.meta({ description: 'requests charged at a bound (usage not shown upstream)' }),
});

export const usageQuerySchema = z.strictObject({
  // Optional rather than defaulted: a defaulted field reads as required in the OpenAPI document.
  by: z.enum(GROUPS).optional().meta({ description: 'the group of each row (default model)' }),
  user: refSchema.optional().meta({ description: 'only this user (name or id)' }),
  team: refSchema.optional().meta({ description: 'only this team (name or id)' }),
  key: refSchema.optional().meta({ description: 'only this gateway key (id)' }),
  model: z.string().min(1).max(200).optional().meta({ description: 'only this model id' }),
  credential: refSchema.optional().meta({ description: 'only this credential (id)' }),
  since: dateText.optional().meta({
    description:
      'YYYY-MM-DD (the start of that day in usage.timezone), an ISO time (UTC unless it says otherwise) or a duration back from now such as 7d; default: the start of this UTC month',
  }),
  until: dateText.optional().meta({ description: 'exclusive end, same forms as since; default: now' }),
});

export const usageOps = [
  defineOp({
    id: 'usage.query',
    method: 'GET',
    path: '/admin/v1/usage',
    tag: 'usage',
    summary: 'Tokens and cost from the ledger, one row per group (all rows in one page)',
    query: usageQuerySchema,
    response: pageOf(usageRowSchema).extend({
      timezone: z.string().meta({ description: 'usage.timezone: the zone days and bare dates are read in' }),
    }),
    run: async (ctx, { query }) => {
      const by = query.by ?? 'model';
      const now = ctx.now();
      const zone = ctx.config.usage.timezone;
      const since =
        query.since === undefined
          ? periodStart('month', now)
          : parseReportDate(query.since, now, 'since', zone);
      // `until` is exclusive, so the default includes a request recorded in this very millisecond.
      const until = query.until === undefined ? now + 1 : parseReportDate(query.until, now, 'until', zone);
      const userId = query.user === undefined ? undefined : (await ctx.services.users.get(query.user)).id;
      const teamId = query.team === undefined ? undefined : (await ctx.services.teams.get(query.team)).id;
      const rows = await summarise(
        ctx.installation.db,
        by,
        {
          since,
          until,
          ...(userId === undefined ? {} : { userId }),
          ...(teamId === undefined ? {} : { teamId }),
          ...(query.key === undefined ? {} : { keyId: query.key }),
          ...(query.model === undefined ? {} : { model: query.model }),
          ...(query.credential === undefined ? {} : { credentialId: query.credential }),
        },
        zone,
      );
      // The database sums the groups in one query; they come in one page (next_cursor is always null),
      // so the API and `usage --json` agree row for row.
      return {
        items: rows.map(({ group, ...rest }) => ({ [by]: group, ...rest })),
        next_cursor: null,
        timezone: zone,
      };
    },
  }),
];
