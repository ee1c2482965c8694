// The Admin API's Claude Code analytics report: one UTC day, one record per actor, paged by token.
import { z } from 'zod';
import { allItems, DEFAULT_MAX_PAGES, tokenStep } from './paging.js';
import { tokenPageSchema } from './schemas.js';
import type { AdminTransport } from './transport.js';

const count = z.number().int().nonnegative();
const accepts = z.object({ accepted: count, rejected: count });

export const claudeCodeRecordSchema = z.object({
  date: z.string(),
  actor: z.discriminatedUnion('type', [
    z.object({ type: z.literal('user_actor'), email_address: z.string() }),
    z.object({ type: z.literal('api_actor'), api_key_name: z.string() }),
  ]),
  core_metrics: z.object({
    num_sessions: count,
    lines_of_code: z.object({ added: count, removed: count }),
    commits_by_claude_code: count,
    pull_requests_by_claude_code: count,
  }),
  tool_actions: z.record(z.string(), accepts),
  model_breakdown: z
    .array(
      z.object({
        model: z.string(),
        estimated_cost: z.object({ currency: z.string(), amount: z.number() }),
      }),
    )
    .default([]),
});

export type ClaudeCodeRecord = z.output<typeof claudeCodeRecordSchema>;

const page = tokenPageSchema(claudeCodeRecordSchema);

/** Every actor's record of one UTC day (`YYYY-MM-DD`). */
export function fetchClaudeCodeDay(call: AdminTransport, day: string): Promise<ClaudeCodeRecord[]> {
  return allItems(async (cursor: string | null) => {
    const answer = await call({
      method: 'GET',
      path: '/v1/organizations/usage_report/claude_code',
      query: { starting_at: day, limit: '1000', page: cursor ?? undefined },
      schema: page,
    });
    return tokenStep(answer);
  }, DEFAULT_MAX_PAGES);
}
