// The Admin API's spend-limits beta: list the organisation's limits, upsert one (scope, period).
import { z } from 'zod';
import { allItems, cursorStep, DEFAULT_MAX_PAGES } from './paging.js';
import { cursorPageSchema } from './schemas.js';
import type { AdminTransport } from './transport.js';

/**
 * The `anthropic-beta` value of the spend-limits endpoints: the beta's name as Tollgate knows it (the
 * one place it is written; change it here when Anthropic's SDK names it otherwise).
 */
export const SPEND_LIMITS_BETA = 'spend-limits-2026-01-01';

const PATH = '/v1/organizations/spend_limits';

export const spendLimitScopeSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('organization') }),
  z.object({ type: z.literal('workspace'), workspace_id: z.string() }),
]);

export const spendLimitSchema = z.object({
  type: z.literal('spend_limit'),
  id: z.string(),
  /** Integer cents as a decimal string; null = an explicit "no limit". */
  amount: z.string().nullable(),
  currency: z.string(),
  period: z.enum(['daily', 'weekly', 'monthly']),
  scope: spendLimitScopeSchema,
  is_enabled: z.boolean(),
  created_at: z.string(),
});

export type SpendLimitScope = z.output<typeof spendLimitScopeSchema>;
export type SpendLimit = z.output<typeof spendLimitSchema>;

export interface SpendLimitUpsert {
  readonly scope: SpendLimitScope;
  /** Integer cents as a decimal string. */
  readonly amount: string;
}

export interface SpendLimitClient {
  list(): Promise<SpendLimit[]>;
  upsertMonthly(limit: SpendLimitUpsert): Promise<SpendLimit>;
}

const limitPage = cursorPageSchema(spendLimitSchema);

export function createSpendLimitClient(call: AdminTransport, maxPages = DEFAULT_MAX_PAGES): SpendLimitClient {
  return {
    list: () =>
      allItems(async (after: string | null) => {
        const page = await call({
          method: 'GET',
          path: PATH,
          query: { limit: '100', after_id: after ?? undefined },
          beta: SPEND_LIMITS_BETA,
          schema: limitPage,
        });
        return cursorStep(page);
      }, maxPages),
    upsertMonthly: (limit) =>
      call({
        method: 'POST',
        path: PATH,
        body: { amount: limit.amount, scope: limit.scope, period: 'monthly' },
        beta: SPEND_LIMITS_BETA,
        schema: spendLimitSchema,
      }),
  };
}
