// `tollgate anthropic claude-code`: Anthropic's Claude Code analytics of one UTC day, per actor, beside
// the Tollgate spend of the user whose email matches the actor's.

import type { ServiceContext } from '../install/context.js';
import { AppError } from '../lib/errors.js';
import { sumUsage } from '../usage/usage.repo.js';
import { type AdminServiceDeps, openAdminTransport } from './admin.service.js';
import { type ClaudeCodeRecord, claudeCodeSnapshot, fetchClaudeCodeDay } from './claude-code.client.js';
import { DAY_MS, syncRange } from './sync-range.js';

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
  const r = claudeCodeSnapshot(record.date.slice(0, 10), record);
  return {
    actor:
      record.actor.type === 'user_actor'
        ? record.actor.email_address
        : `api key ${record.actor.api_key_name}`,
    sessions: r.sessions,
    linesAdded: r.lines_added,
    linesRemoved: r.lines_removed,
    commits: r.commits,
    pullRequests: r.pull_requests,
    toolAccepted: r.tool_accepted,
    toolRejected: r.tool_rejected,
    estimatedCostCents: record.model_breakdown.reduce((n, m) => n + m.estimated_cost.amount, 0),
    tollgateUser: user?.name ?? null,
    tollgateMicroUsd: user?.spentMicro ?? null,
  };
}

/** One actor's imported Claude Code activity over a range, beside the matching user's Tollgate spend. */
export interface ClaudeCodeActivity {
  readonly actor: string;
  readonly actor_kind: 'user' | 'api_key';
  readonly days: number;
  readonly sessions: number;
  readonly lines_added: number;
  readonly lines_removed: number;
  readonly commits: number;
  readonly pull_requests: number;
  readonly tool_accepted: number;
  readonly tool_rejected: number;
  /** Anthropic's estimate, micro-USD. */
  readonly estimated_micro_usd: number;
  /** The Tollgate user whose email is the actor's (name and id), or null. */
  readonly user: string | null;
  readonly user_id: string | null;
  /** That user's Tollgate spend over the same range (null without a matching user). */
  readonly tollgate_micro_usd: number | null;
}

/** [since, until) of an activity query: whole UTC days; by default the last 30 days up to now. */
export function activityRange(now: number, since?: string, until?: string): { since: number; until: number } {
  return syncRange(now, since, until, { days: 29, lagMs: 0 });
}

export function createClaudeCodeService(ctx: ServiceContext, deps: AdminServiceDeps) {
  const db = ctx.installation.db;

  /** Live users with an email, by lower-cased email. */
  async function usersByEmail() {
    const users = await db.kysely
      .selectFrom('users')
      .select(['id', 'name', 'email'])
      .where('removed_at', 'is', null)
      .where('email', 'is not', null)
      .execute();
    return new Map(users.map((u) => [(u.email ?? '').toLowerCase(), u]));
  }

  async function spendByUser(since: number, until: number): Promise<Map<string, number>> {
    const spend = await sumUsage(db, { since, until, groupBy: ['user'] }, ['cost_micro']);
    return new Map(spend.map((r) => [r.user ?? '', Number(r.cost_micro)]));
  }

  return {
    async day(text: string): Promise<ClaudeCodeRow[]> {
      const { day, start } = parseDay(text);
      const records = await fetchClaudeCodeDay(await openAdminTransport(deps), day);
      const byEmail = await usersByEmail();
      const spentBy = await spendByUser(start, start + DAY_MS);
      return records.map((record) => {
        const email = record.actor.type === 'user_actor' ? record.actor.email_address.toLowerCase() : null;
        const user = email === null ? undefined : byEmail.get(email);
        return claudeCodeRow(
          record,
          user === undefined ? null : { name: user.name, spentMicro: spentBy.get(user.id) ?? 0 },
        );
      });
    },

    /** Each actor's activity over [since, until) as `anthropic sync` imported it (no call to Anthropic). */
    async activity(range: { since?: string; until?: string } = {}) {
      const { since, until } = activityRange(ctx.clock(), range.since, range.until);
      const firstDay = new Date(since).toISOString().slice(0, 10);
      const lastDay = new Date(until - 1).toISOString().slice(0, 10);
      const rows = await db.kysely
        .selectFrom('anthropic_claude_code')
        .select(({ fn }) => [
          'actor',
          'actor_kind',
          fn.countAll<number>().as('days'),
          fn.sum<number>('sessions').as('sessions'),
          fn.sum<number>('lines_added').as('lines_added'),
          fn.sum<number>('lines_removed').as('lines_removed'),
          fn.sum<number>('commits').as('commits'),
          fn.sum<number>('pull_requests').as('pull_requests'),
          fn.sum<number>('tool_accepted').as('tool_accepted'),
          fn.sum<number>('tool_rejected').as('tool_rejected'),
          fn.sum<number>('estimated_micro').as('estimated_micro'),
        ])
        .where('day', '>=', firstDay)
        .where('day', '<=', lastDay)
        .groupBy(['actor_kind', 'actor'])
        .orderBy('actor_kind', 'desc')
        .orderBy('actor')
        .execute();
      const byEmail = await usersByEmail();
      const spentBy = await spendByUser(since, until);
      const actors = rows.map((r): ClaudeCodeActivity => {
        const user = r.actor_kind === 'user' ? byEmail.get(r.actor) : undefined;
        return {
          actor: r.actor,
          actor_kind: r.actor_kind,
          days: Number(r.days),
          sessions: Number(r.sessions),
          lines_added: Number(r.lines_added),
          lines_removed: Number(r.lines_removed),
          commits: Number(r.commits),
          pull_requests: Number(r.pull_requests),
          tool_accepted: Number(r.tool_accepted),
          tool_rejected: Number(r.tool_rejected),
          estimated_micro_usd: Number(r.estimated_micro),
          user: user?.name ?? null,
          user_id: user?.id ?? null,
          tollgate_micro_usd: user === undefined ? null : (spentBy.get(user.id) ?? 0),
        };
      });
      return { since: new Date(since).toISOString(), until: new Date(until).toISOString(), actors };
    },
  };
}

export type ClaudeCodeService = ReturnType<typeof createClaudeCodeService>;
