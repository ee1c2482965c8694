// `tollgate anthropic sync`: imports Anthropic's usage and cost reports for a range (upserted, so a
// second import of the same days changes nothing), then reconciles them with Tollgate's ledger.
import { sql } from 'kysely';
import type { Tx } from '../db/tx.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { readMeta, writeMeta } from '../install/meta.repo.js';
import { isAppError } from '../lib/errors.js';
import type { PriceBook } from '../pricing/models.js';
import { sumUsage } from '../usage/usage.repo.js';
import { type AdminServiceDeps, openAdminTransport } from './admin.service.js';
import { type ClaudeCodeSnapshot, claudeCodeSnapshot, fetchClaudeCodeDay } from './claude-code.client.js';
import { createAdminClient } from './client.js';
import { type KeyInfo, type LedgerFigures, type ReconcileRow, reconcile } from './reconcile.js';
import {
  createAdminReportSource,
  type ReportedCost,
  type ReportedUsage,
  type UsageReportSource,
} from './reports.js';
import type { ApiKey } from './schemas.js';
import { DAY_MS, syncRange, utcDay } from './sync-range.js';
import type { AdminTransport } from './transport.js';

export interface SyncDeps extends AdminServiceDeps {
  readonly prices: PriceBook;
}

/** The reconciliation of a range, read from what the last syncs imported. */
export interface Reconciliation {
  readonly since: string;
  readonly until: string;
  /** When `anthropic sync` last ran (ISO time), or null if it never did. */
  readonly last_sync_at: string | null;
  readonly rows: ReconcileRow[];
  /** The organisation's cost report total over the range (micro-USD), beside the priced usage. */
  readonly cost_report_micro_usd: number;
  readonly priced_usage_micro_usd: number;
}

export interface SyncResult extends Reconciliation {
  readonly imported: {
    usage_rows: number;
    cost_rows: number;
    /** Claude Code analytics rows, or null when the organisation has no access to that report. */
    claude_code_rows: number | null;
  };
}

/** The meta key holding the time of the last sync (ms). */
const LAST_SYNC = 'anthropic.last_sync_at';

const NO_WORKSPACE = '';

/** Sums the lines that share a key (a report may split one key's day across pages). */
function mergeUsage(rows: readonly ReportedUsage[]): ReportedUsage[] {
  const out = new Map<string, ReportedUsage>();
  for (const r of rows) {
    const id = `${r.day}\u0000${r.apiKeyId}\u0000${r.workspaceId ?? NO_WORKSPACE}\u0000${r.model}`;
    const seen = out.get(id);
    out.set(
      id,
      seen === undefined
        ? r
        : {
            ...seen,
            uncachedInputTokens: seen.uncachedInputTokens + r.uncachedInputTokens,
            cacheWrite5mTokens: seen.cacheWrite5mTokens + r.cacheWrite5mTokens,
            cacheWrite1hTokens: seen.cacheWrite1hTokens + r.cacheWrite1hTokens,
            cacheReadTokens: seen.cacheReadTokens + r.cacheReadTokens,
            outputTokens: seen.outputTokens + r.outputTokens,
            webSearchRequests: seen.webSearchRequests + r.webSearchRequests,
          },
    );
  }
  return [...out.values()];
}

function mergeCost(rows: readonly ReportedCost[]): ReportedCost[] {
  const out = new Map<string, ReportedCost>();
  for (const r of rows) {
    const id = `${r.day}\u0000${r.workspaceId ?? NO_WORKSPACE}\u0000${r.description}`;
    const seen = out.get(id);
    out.set(
      id,
      seen === undefined ? r : { ...seen, amountMicro: seen.amountMicro + r.amountMicro, amountCents: '' },
    );
  }
  // A merged line's cents string is rebuilt from its exact micro-USD sum.
  return [...out.values()].map((r) =>
    r.amountCents !== ''
      ? r
      : {
          ...r,
          amountCents: `${Math.floor(r.amountMicro / 10_000)}.${String(r.amountMicro % 10_000).padStart(4, '0')}`,
        },
  );
}

export function createAnthropicSyncService(ctx: ServiceContext, deps: SyncDeps) {
  const db = ctx.installation.db;

  async function importReports(by: Actor, call: AdminTransport, since: number, until: number) {
    const source: UsageReportSource = createAdminReportSource(call);
    const usage = mergeUsage(await source.usage(since, until));
    const cost = mergeCost(await source.cost(since, until));
    const keys = await createAdminClient(call).listApiKeys();
    const claudeCode = await fetchClaudeCode(call, since, until);
    const [firstDay, lastDay] = [utcDay(since), utcDay(until - 1)];
    await change(ctx, by, async (u) => {
      // The days read are replaced: a line Anthropic no longer reports for them does not linger.
      for (const table of ['anthropic_usage_report', 'anthropic_cost_report'] as const) {
        await u.tx.deleteFrom(table).where('day', '>=', firstDay).where('day', '<=', lastDay).execute();
      }
      for (const r of usage) {
        const values = {
          uncached_input_tokens: r.uncachedInputTokens,
          cache_write_5m_tokens: r.cacheWrite5mTokens,
          cache_write_1h_tokens: r.cacheWrite1hTokens,
          cache_read_tokens: r.cacheReadTokens,
          output_tokens: r.outputTokens,
          web_search_requests: r.webSearchRequests,
        };
        await u.tx
          .insertInto('anthropic_usage_report')
          .values({
            day: r.day,
            api_key_id: r.apiKeyId,
            workspace_id: r.workspaceId ?? NO_WORKSPACE,
            model: r.model,
            ...values,
          })
          .onConflict((oc) => oc.columns(['day', 'api_key_id', 'workspace_id', 'model']).doUpdateSet(values))
          .execute();
      }
      for (const r of cost) {
        const values = {
          model: r.model,
          token_type: r.tokenType,
          amount_cents: r.amountCents,
          amount_micro: r.amountMicro,
          currency: r.currency,
        };
        await u.tx
          .insertInto('anthropic_cost_report')
          .values({
            day: r.day,
            workspace_id: r.workspaceId ?? NO_WORKSPACE,
            description: r.description,
            ...values,
          })
          .onConflict((oc) => oc.columns(['day', 'workspace_id', 'description']).doUpdateSet(values))
          .execute();
      }
      await writeKeys(u.tx, keys, ctx.clock());
      if (claudeCode !== null) await writeClaudeCode(u.tx, claudeCode, firstDay, lastDay);
      await writeMeta(u.tx, LAST_SYNC, String(ctx.clock()));
      await u.audit('anthropic.sync', 'anthropic_reports', `${firstDay}..${lastDay}`, {
        usage_rows: usage.length,
        cost_rows: cost.length,
        claude_code_rows: claudeCode?.length ?? null,
      });
    });
    return { usage_rows: usage.length, cost_rows: cost.length, claude_code_rows: claudeCode?.length ?? null };
  }

  /** The keys as listed now replace the stored list (a deleted key's old rows keep their id). */
  async function writeKeys(tx: Tx, keys: readonly ApiKey[], at: number): Promise<void> {
    await tx.deleteFrom('anthropic_api_keys').execute();
    for (const k of keys)
      await tx
        .insertInto('anthropic_api_keys')
        .values({
          id: k.id,
          name: k.name,
          partial_key_hint: k.partial_key_hint,
          workspace_id: k.workspace_id,
          status: k.status,
          listed_at: at,
        })
        .execute();
  }

  async function writeClaudeCode(
    tx: Tx,
    rows: readonly ClaudeCodeSnapshot[],
    firstDay: string,
    lastDay: string,
  ): Promise<void> {
    await tx
      .deleteFrom('anthropic_claude_code')
      .where('day', '>=', firstDay)
      .where('day', '<=', lastDay)
      .execute();
    for (const r of rows)
      await tx
        .insertInto('anthropic_claude_code')
        .values(r)
        .onConflict((oc) =>
          oc.columns(['day', 'actor_kind', 'actor']).doUpdateSet({
            sessions: sql`anthropic_claude_code.sessions + excluded.sessions`,
            lines_added: sql`anthropic_claude_code.lines_added + excluded.lines_added`,
            lines_removed: sql`anthropic_claude_code.lines_removed + excluded.lines_removed`,
            commits: sql`anthropic_claude_code.commits + excluded.commits`,
            pull_requests: sql`anthropic_claude_code.pull_requests + excluded.pull_requests`,
            tool_accepted: sql`anthropic_claude_code.tool_accepted + excluded.tool_accepted`,
            tool_rejected: sql`anthropic_claude_code.tool_rejected + excluded.tool_rejected`,
            estimated_micro: sql`anthropic_claude_code.estimated_micro + excluded.estimated_micro`,
          }),
        )
        .execute();
  }

  /**
   * Every day's Claude Code analytics of [since, until), or null when the organisation cannot read that
   * report (no access, or not a Claude Code organisation): the other reports still import.
   */
  async function fetchClaudeCode(call: AdminTransport, since: number, until: number) {
    const out: ClaudeCodeSnapshot[] = [];
    try {
      for (let day = since; day < until; day += DAY_MS) {
        const date = utcDay(day);
        for (const record of await fetchClaudeCodeDay(call, date)) out.push(claudeCodeSnapshot(date, record));
      }
    } catch (error) {
      if (isAppError(error) && (error.code === 'forbidden' || error.code === 'not_found')) return null;
      throw error;
    }
    return out;
  }

  async function storedKeys(): Promise<KeyInfo[]> {
    return db.kysely.selectFrom('anthropic_api_keys').select(['id', 'name', 'partial_key_hint']).execute();
  }

  async function reconciliation(since: number, until: number): Promise<Reconciliation> {
    const credentials = await deps.credentials.list({ provider: 'anthropic' });
    const rows = reconcile({
      reported: await storedUsage(since, until),
      ledger: await ledger(since, until),
      keys: await storedKeys(),
      credentials,
      price: (model) => deps.prices.lookup(model),
    });
    const last = await readMeta(db, LAST_SYNC);
    return {
      since: new Date(since).toISOString(),
      until: new Date(until).toISOString(),
      last_sync_at: last === null ? null : new Date(Number(last)).toISOString(),
      rows,
      cost_report_micro_usd: await storedCostMicro(since, until),
      priced_usage_micro_usd: rows.reduce((sum, r) => sum + (r.anthropic.cost_micro_usd ?? 0), 0),
    };
  }

  /** The imported usage report rows of [since, until)'s days. */
  async function storedUsage(since: number, until: number): Promise<ReportedUsage[]> {
    const rows = await db.kysely
      .selectFrom('anthropic_usage_report')
      .selectAll()
      .where('day', '>=', utcDay(since))
      .where('day', '<=', utcDay(until - 1))
      .execute();
    return rows.map((r) => ({
      day: r.day,
      apiKeyId: r.api_key_id,
      workspaceId: r.workspace_id === NO_WORKSPACE ? null : r.workspace_id,
      model: r.model,
      uncachedInputTokens: Number(r.uncached_input_tokens),
      cacheWrite5mTokens: Number(r.cache_write_5m_tokens),
      cacheWrite1hTokens: Number(r.cache_write_1h_tokens),
      cacheReadTokens: Number(r.cache_read_tokens),
      outputTokens: Number(r.output_tokens),
      webSearchRequests: Number(r.web_search_requests),
    }));
  }

  async function storedCostMicro(since: number, until: number): Promise<number> {
    const row = await db.kysely
      .selectFrom('anthropic_cost_report')
      .select(sql<string | number | null>`sum(amount_micro)`.as('total'))
      .where('day', '>=', utcDay(since))
      .where('day', '<=', utcDay(until - 1))
      .executeTakeFirst();
    return Number(row?.total ?? 0);
  }

  async function ledger(since: number, until: number): Promise<LedgerFigures[]> {
    const rows = await sumUsage(db, { since, until, groupBy: ['credential', 'model', 'bucket'] });
    return rows.map((r) => ({
      day: utcDay(r.bucket ?? since),
      credentialId: r.credential ?? '',
      model: r.model ?? '',
      input_tokens: r.input_tokens,
      output_tokens: r.output_tokens,
      cache_write_5m_tokens: r.cache_write_5m_tokens,
      cache_write_1h_tokens: r.cache_write_1h_tokens,
      cache_read_tokens: r.cache_read_tokens,
      web_search_requests: r.web_search_requests,
      cost_micro_usd: r.cost_micro,
    }));
  }

  return {
    /** Imports the range's reports (and the key list, and Claude Code analytics), then reconciles. */
    async sync(by: Actor, range: { since?: string; until?: string } = {}): Promise<SyncResult> {
      const { since, until } = syncRange(ctx.clock(), range.since, range.until);
      const imported = await importReports(by, await openAdminTransport(deps), since, until);
      return { ...(await reconciliation(since, until)), imported };
    },

    /** The reconciliation of a range from what was imported, without calling Anthropic. */
    async reconciliation(range: { since?: string; until?: string } = {}): Promise<Reconciliation> {
      const { since, until } = syncRange(ctx.clock(), range.since, range.until);
      return reconciliation(since, until);
    },
  };
}

export type AnthropicSyncService = ReturnType<typeof createAnthropicSyncService>;
