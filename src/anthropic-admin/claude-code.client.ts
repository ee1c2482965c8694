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

/** One record as stored (`anthropic_claude_code`): tool actions summed, the estimate in micro-USD. */
export interface ClaudeCodeSnapshot {
  readonly day: string;
  readonly actor: string;
  readonly actor_kind: 'user' | 'api_key';
  readonly sessions: number;
  readonly lines_added: number;
  readonly lines_removed: number;
  readonly commits: number;
  readonly pull_requests: number;
  readonly tool_accepted: number;
  readonly tool_rejected: number;
  readonly estimated_micro: number;
}

/** The stored form of one record (pure). Anthropic's estimate is in cents (× 10,000 = micro-USD). */
export function claudeCodeSnapshot(day: string, record: ClaudeCodeRecord): ClaudeCodeSnapshot {
  const tools = Object.values(record.tool_actions);
  const user = record.actor.type === 'user_actor';
  return {
    day,
    actor:
      record.actor.type === 'user_actor'
        ? record.actor.email_address.toLowerCase()
        : record.actor.api_key_name,
    actor_kind: user ? 'user' : 'api_key',
    sessions: record.core_metrics.num_sessions,
    lines_added: record.core_metrics.lines_of_code.added,
    lines_removed: record.core_metrics.lines_of_code.removed,
    commits: record.core_metrics.commits_by_claude_code,
    pull_requests: record.core_metrics.pull_requests_by_claude_code,
    tool_accepted: tools.reduce((n, t) => n + t.accepted, 0),
    tool_rejected: tools.reduce((n, t) => n + t.rejected, 0),
    estimated_micro: Math.round(
      record.model_breakdown.reduce((n, m) => n + m.estimated_cost.amount, 0) * 10_000,
    ),
  };
}
