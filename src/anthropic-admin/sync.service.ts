// `tollgate anthropic sync`: imports Anthropic's usage and cost reports for a range (upserted, so a
// second import of the same days changes nothing), then reconciles them with Tollgate's ledger.
import { sql } from 'kysely';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import type { PriceBook } from '../pricing/models.js';
import { sumUsage } from '../usage/usage.repo.js';
import type { CredentialService } from '../vault/credential.service.js';
import type { UpstreamTarget } from '../vault/validate-credential.js';
import { looksLikeInferenceKey, noAdminCredential, wrongKeyType } from './admin-errors.js';
import { chooseAdminCredential } from './admin-key.js';
import { createAdminClient } from './client.js';
import { type LedgerFigures, type ReconcileRow, reconcile } from './reconcile.js';
import {
  createAdminReportSource,
  type ReportedCost,
  type ReportedUsage,
  type UsageReportSource,
} from './reports.js';
import { syncRange, utcDay } from './sync-range.js';
import { createTransport } from './transport.js';

export interface SyncDeps {
  readonly credentials: Pick<CredentialService, 'list' | 'reveal'>;
  readonly upstream: UpstreamTarget;
  readonly prices: PriceBook;
}

export interface SyncResult {
  readonly since: string;
  readonly until: string;
  readonly imported: { usage_rows: number; cost_rows: number };
  readonly rows: ReconcileRow[];
  /** The organisation's cost report total over the range (micro-USD), beside the priced usage. */
  readonly cost_report_micro_usd: number;
  readonly priced_usage_micro_usd: number;
}

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

  async function openAdmin() {
    const chosen = chooseAdminCredential(await deps.credentials.list({ provider: 'anthropic-admin' }));
    if (chosen === null) throw noAdminCredential();
    const adminKey = await deps.credentials.reveal(chosen.id);
    if (looksLikeInferenceKey(adminKey)) throw wrongKeyType();
    const call = createTransport({
      baseUrl: deps.upstream.baseUrl,
      adminKey,
      timeoutMs: deps.upstream.timeoutMs,
    });
    return { client: createAdminClient(call), reports: createAdminReportSource(call) };
  }

  async function importReports(by: Actor, source: UsageReportSource, since: number, until: number) {
    const usage = mergeUsage(await source.usage(since, until));
    const cost = mergeCost(await source.cost(since, until));
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
      await u.audit('anthropic.sync', 'anthropic_reports', `${firstDay}..${lastDay}`, {
        usage_rows: usage.length,
        cost_rows: cost.length,
      });
    });
    return { usage_rows: usage.length, cost_rows: cost.length };
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
    async sync(by: Actor, range: { since?: string; until?: string } = {}): Promise<SyncResult> {
      const { since, until } = syncRange(ctx.clock(), range.since, range.until);
      const admin = await openAdmin();
      const imported = await importReports(by, admin.reports, since, until);
      const keys = await admin.client.listApiKeys();
      const credentials = await deps.credentials.list({ provider: 'anthropic' });
      const rows = reconcile({
        reported: await storedUsage(since, until),
        ledger: await ledger(since, until),
        keys,
        credentials,
        price: (model) => deps.prices.lookup(model),
      });
      return {
        since: new Date(since).toISOString(),
        until: new Date(until).toISOString(),
        imported,
        rows,
        cost_report_micro_usd: await storedCostMicro(since, until),
        priced_usage_micro_usd: rows.reduce((sum, r) => sum + (r.anthropic.cost_micro_usd ?? 0), 0),
      };
    },
  };
}

export type AnthropicSyncService = ReturnType<typeof createAnthropicSyncService>;
