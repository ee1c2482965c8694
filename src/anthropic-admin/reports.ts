// Anthropic's usage and cost reports behind one interface (`UsageReportSource`), so the beta analytics
// API can be added beside the documented `usage_report/messages` and `cost_report` endpoints.
import { z } from 'zod';
import { AppError } from '../lib/errors.js';
import { allItems, DEFAULT_MAX_PAGES, tokenStep } from './paging.js';
import { tokenPageSchema } from './schemas.js';
import type { AdminTransport } from './transport.js';

const count = z.number().int().nonnegative();

export const usageResultSchema = z.object({
  uncached_input_tokens: count,
  cache_creation: z.object({ ephemeral_1h_input_tokens: count, ephemeral_5m_input_tokens: count }),
  cache_read_input_tokens: count,
  output_tokens: count,
  server_tool_use: z.object({ web_search_requests: count }).nullable().optional(),
  api_key_id: z.string().nullable(),
  workspace_id: z.string().nullable(),
  model: z.string().nullable(),
});

/** `amount` is cents as a decimal string (`"123.45"` = $1.2345). */
export const costResultSchema = z.object({
  amount: z.string().regex(/^\d+(\.\d+)?$/, 'a decimal string of cents'),
  currency: z.string(),
  cost_type: z.string().nullable().optional(),
  token_type: z.string().nullable().optional(),
  description: z.string().nullable().optional(),
  model: z.string().nullable().optional(),
  workspace_id: z.string().nullable().optional(),
});

function bucketSchema<T extends z.ZodType>(result: T) {
  return z.object({ starting_at: z.string(), ending_at: z.string(), results: z.array(result) });
}

const usagePage = tokenPageSchema(bucketSchema(usageResultSchema));
const costPage = tokenPageSchema(bucketSchema(costResultSchema));

/** One day × API key × model of Anthropic's usage report. */
export interface ReportedUsage {
  readonly day: string;
  readonly apiKeyId: string;
  readonly workspaceId: string | null;
  readonly model: string;
  readonly uncachedInputTokens: number;
  readonly cacheWrite5mTokens: number;
  readonly cacheWrite1hTokens: number;
  readonly cacheReadTokens: number;
  readonly outputTokens: number;
  readonly webSearchRequests: number;
}

/** One day × workspace × description line of Anthropic's cost report, in exact micro-USD. */
export interface ReportedCost {
  readonly day: string;
  readonly workspaceId: string | null;
  readonly description: string;
  readonly model: string | null;
  readonly tokenType: string | null;
  readonly amountCents: string;
  readonly amountMicro: number;
  readonly currency: string;
}

/** Where usage and cost reports come from: [since, until), whole UTC days from `since`. */
export interface UsageReportSource {
  usage(since: number, until: number): Promise<ReportedUsage[]>;
  cost(since: number, until: number): Promise<ReportedCost[]>;
}

/**
 * Cents as a decimal string → micro-USD, exactly (1 cent = 10,000 µUSD): `"123.45"` → 1,234,500.
 * More than four decimals is rounded half up to the micro-dollar.
 */
export function centsToMicro(amount: string): number {
  const match = /^(\d+)(?:\.(\d+))?$/.exec(amount);
  if (!match)
    throw new AppError(
      'upstream_error',
      `Anthropic's cost report holds an amount that is not cents: "${amount.slice(0, 40)}"`,
    );
  const fraction = (match[2] ?? '').padEnd(5, '0');
  let micro = BigInt(match[1] ?? '0') * 10_000n + BigInt(fraction.slice(0, 4));
  if (Number(fraction[4]) >= 5) micro += 1n;
  if (micro > BigInt(Number.MAX_SAFE_INTEGER))
    throw new AppError('upstream_error', 'a cost report amount is too large');
  return Number(micro);
}

const DAY_MS = 86_400_000;
const dayOf = (iso: string) =>
  new Date(Math.floor(Date.parse(iso) / DAY_MS) * DAY_MS).toISOString().slice(0, 10);

/** The documented reports, read through the Admin API (1d buckets, 31 per page, every page). */
export function createAdminReportSource(
  call: AdminTransport,
  options: { maxPages?: number } = {},
): UsageReportSource {
  const maxPages = options.maxPages ?? DEFAULT_MAX_PAGES;
  const range = (since: number, until: number) => ({
    starting_at: new Date(since).toISOString(),
    ending_at: new Date(until).toISOString(),
  });
  return {
    async usage(since, until) {
      const buckets = await allItems(async (page: string | null) => {
        const answer = await call({
          method: 'GET',
          path: '/v1/organizations/usage_report/messages',
          query: {
            ...range(since, until),
            bucket_width: '1d',
            limit: '31',
            'group_by[]': ['api_key_id', 'workspace_id', 'model'],
            page: page ?? undefined,
          },
          schema: usagePage,
        });
        return tokenStep(answer);
      }, maxPages);
      return buckets.flatMap((b) =>
        b.results.map((r) => ({
          day: dayOf(b.starting_at),
          // Console (Workbench) traffic has no key: it is reported under a null key id.
          apiKeyId: r.api_key_id ?? '(no key)',
          workspaceId: r.workspace_id,
          model: r.model ?? '(unknown)',
          uncachedInputTokens: r.uncached_input_tokens,
          cacheWrite5mTokens: r.cache_creation.ephemeral_5m_input_tokens,
          cacheWrite1hTokens: r.cache_creation.ephemeral_1h_input_tokens,
          cacheReadTokens: r.cache_read_input_tokens,
          outputTokens: r.output_tokens,
          webSearchRequests: r.server_tool_use?.web_search_requests ?? 0,
        })),
      );
    },
    async cost(since, until) {
      const buckets = await allItems(async (page: string | null) => {
        const answer = await call({
          method: 'GET',
          path: '/v1/organizations/cost_report',
          query: {
            ...range(since, until),
            limit: '31',
            'group_by[]': ['workspace_id', 'description'],
            page: page ?? undefined,
          },
          schema: costPage,
        });
        return tokenStep(answer);
      }, maxPages);
      return buckets.flatMap((b) =>
        b.results.map((r) => ({
          day: dayOf(b.starting_at),
          workspaceId: r.workspace_id ?? null,
          description: r.description ?? '',
          model: r.model ?? null,
          tokenType: r.token_type ?? null,
          amountCents: r.amount,
          amountMicro: centsToMicro(r.amount),
          currency: r.currency,
        })),
      );
    },
  };
}
