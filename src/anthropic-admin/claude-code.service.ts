// `tollgate anthropic claude-code`: Anthropic's Claude Code analytics of one UTC day, per actor, beside
// the Tollgate spend of the user whose email matches the actor's.

import type { ServiceContext } from '../install/context.js';
import { AppError } from '../lib/errors.js';
import { sumUsage } from '../usage/usage.repo.js';
import { type AdminServiceDeps, openAdminTransport } from './admin.service.js';
import { type ClaudeCodeRecord, fetchClaudeCodeDay } from './claude-code.client.js';

const DAY_MS = 86_400_000;

export interface ClaudeCodeRow {
  readonly actor: string;
  readonly sessions: number;
  readonly linesAdded: number;
  readonly linesRemoved: number;
  readonly commits: number;
  readonly pullRequests: number;
  readonly toolAccepted: number;
  readonly toolRejected: number;
  /** Anthropic's estimate for the day, in cents (summed over models). */
  readonly estimatedCostCents: number;
  /** The Tollgate user whose email is the actor's, or null. */
  readonly tollgateUser: string | null;
  /** That user's Tollgate spend in the same UTC day (null without a matching user). */
  readonly tollgateMicroUsd: number | null;
}

/** `YYYY-MM-DD` of a real UTC day; the start of that day in milliseconds. */
export function parseDay(text: string): { day: string; start: number } {
  const start = /^\d{4}-\d{2}-\d{2}$/.test(text) ? Date.parse(`${text}T00:00:00Z`) : Number.NaN;
  if (Number.isNaN(start) || new Date(start).toISOString().slice(0, 10) !== text)
    throw new AppError(
      'invalid_input',
      `--day must be a UTC day as YYYY-MM-DD (got ${JSON.stringify(text.slice(0, 20))})`,
    );
  return { day: text, start };
}

/** The row of one record (pure): tool accept/reject summed over the tools. */
export function claudeCodeRow(
  record: ClaudeCodeRecord,
  user: { name: string; spentMicro: number } | null,
): ClaudeCodeRow {
  const tools = Object.values(record.tool_actions);
  return {
    actor:
      record.actor.type === 'user_actor'
        ? record.actor.email_address
        : `api key ${record.actor.api_key_name}`,
    sessions: record.core_metrics.num_sessions,
    linesAdded: record.core_metrics.lines_of_code.added,
    linesRemoved: record.core_metrics.lines_of_code.removed,
    commits: record.core_metrics.commits_by_claude_code,
    pullRequests: record.core_metrics.pull_requests_by_claude_code,
    toolAccepted: tools.reduce((n, t) => n + t.accepted, 0),
    toolRejected: tools.reduce((n, t) => n + t.rejected, 0),
    estimatedCostCents: record.model_breakdown.reduce((n, m) => n + m.estimated_cost.amount, 0),
    tollgateUser: user?.name ?? null,
    tollgateMicroUsd: user?.spentMicro ?? null,
  };
}

export function createClaudeCodeService(ctx: ServiceContext, deps: AdminServiceDeps) {
  const db = ctx.installation.db;

  return {
    async day(text: string): Promise<ClaudeCodeRow[]> {
      const { day, start } = parseDay(text);
      const records = await fetchClaudeCodeDay(await openAdminTransport(deps), day);
      const users = await db.kysely
        .selectFrom('users')
        .select(['id', 'name', 'email'])
        .where('removed_at', 'is', null)
        .where('email', 'is not', null)
        .execute();
      const byEmail = new Map(users.map((u) => [(u.email ?? '').toLowerCase(), u]));
      const spend = await sumUsage(db, { since: start, until: start + DAY_MS, groupBy: ['user'] }, [
        'cost_micro',
      ]);
      const spentBy = new Map(spend.map((r) => [r.user ?? '', Number(r.cost_micro)]));
      return records.map((record) => {
        const email = record.actor.type === 'user_actor' ? record.actor.email_address.toLowerCase() : null;
        const user = email === null ? undefined : byEmail.get(email);
        return claudeCodeRow(
          record,
          user === undefined ? null : { name: user.name, spentMicro: spentBy.get(user.id) ?? 0 },
        );
      });
    },
  };
}

export type ClaudeCodeService = ReturnType<typeof createClaudeCodeService>;
