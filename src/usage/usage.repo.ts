// Usage summaries over the ledger, grouped by model, user, key, team, credential or UTC day.
import { sql } from 'kysely';
import type { Db } from '../db/connect.js';
import { formatUsd } from '../lib/money.js';

export const GROUPS = ['model', 'user', 'key', 'team', 'credential', 'day'] as const;
export type Group = (typeof GROUPS)[number];

export interface UsageFilter {
  since: number;
  until: number;
  userId?: string;
  teamId?: string;
  keyId?: string;
}

export interface UsageRow {
  /** The group's value: a model id, a user/team/credential name, a key id or a YYYY-MM-DD day. */
  group: string | null;
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  cache_read_tokens: number;
  web_search_requests: number;
  cost_micro_usd: number;
  cost_usd: string;
  saved_micro_usd: number;
  estimated_requests: number;
}

const DAY_MS = 86_400_000;

const COLUMN: Record<Exclude<Group, 'day'>, 'model' | 'user_id' | 'key_id' | 'team_id' | 'credential_id'> = {
  model: 'model',
  user: 'user_id',
  key: 'key_id',
  team: 'team_id',
  credential: 'credential_id',
};

/** Sums the Messages ledger rows in [since, until) per group; money stays integer micro-USD. */
export async function summarise(db: Db, by: Group, filter: UsageFilter): Promise<UsageRow[]> {
  const groupExpr =
    by === 'day' ? sql<string>`cast(at / ${sql.lit(DAY_MS)} as bigint)` : sql.ref<string>(COLUMN[by]);
  let query = db.kysely
    .selectFrom('usage_records')
    .select([
      groupExpr.as('grp'),
      sql<number>`sum(case when status >= 200 and status < 300 then 1 else 0 end)`.as('requests'),
      sql<number>`sum(case when status >= 200 and status < 300 then 0 else 1 end)`.as('errors'),
      sql<number>`sum(input_tokens)`.as('input_tokens'),
      sql<number>`sum(output_tokens)`.as('output_tokens'),
      sql<number>`sum(cache_write_5m_tokens)`.as('cache_write_5m_tokens'),
      sql<number>`sum(cache_write_1h_tokens)`.as('cache_write_1h_tokens'),
      sql<number>`sum(cache_read_tokens)`.as('cache_read_tokens'),
      sql<number>`sum(web_search_requests)`.as('web_search_requests'),
      sql<number>`sum(cost_micro)`.as('cost_micro'),
      sql<number>`sum(saved_micro)`.as('saved_micro'),
      sql<number>`sum(estimated)`.as('estimated'),
    ])
    .where('endpoint', '=', 'messages')
    .where('at', '>=', filter.since)
    .where('at', '<', filter.until)
    .groupBy(groupExpr)
    .orderBy(groupExpr);
  if (filter.userId) query = query.where('user_id', '=', filter.userId);
  if (filter.teamId) query = query.where('team_id', '=', filter.teamId);
  if (filter.keyId) query = query.where('key_id', '=', filter.keyId);
  const rows = await query.execute();
  const names = await labels(
    db,
    by,
    rows.map((r) => (r.grp === null ? null : String(r.grp))),
  );
  return rows.map((r) => {
    const cost = Number(r.cost_micro);
    const key = r.grp === null ? null : String(r.grp);
    return {
      group:
        key === null
          ? null
          : by === 'day'
            ? new Date(Number(key) * DAY_MS).toISOString().slice(0, 10)
            : (names.get(key) ?? key),
      requests: Number(r.requests),
      errors: Number(r.errors),
      input_tokens: Number(r.input_tokens),
      output_tokens: Number(r.output_tokens),
      cache_write_5m_tokens: Number(r.cache_write_5m_tokens),
      cache_write_1h_tokens: Number(r.cache_write_1h_tokens),
      cache_read_tokens: Number(r.cache_read_tokens),
      web_search_requests: Number(r.web_search_requests),
      cost_micro_usd: cost,
      cost_usd: formatUsd(cost),
      saved_micro_usd: Number(r.saved_micro),
      estimated_requests: Number(r.estimated),
    };
  });
}

/** Names for user, team and credential ids (keys are shown by id, models and days as they are). */
async function labels(db: Db, by: Group, ids: Array<string | null>): Promise<Map<string, string>> {
  const wanted = ids.filter((x): x is string => x !== null);
  if (wanted.length === 0 || (by !== 'user' && by !== 'team' && by !== 'credential')) return new Map();
  const table = by === 'user' ? 'users' : by === 'team' ? 'teams' : 'credentials';
  const rows = await db.kysely.selectFrom(table).select(['id', 'name']).where('id', 'in', wanted).execute();
  return new Map(rows.map((r) => [r.id, r.name]));
}
