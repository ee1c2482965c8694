// Reconciliation (pure): per UTC day × credential × model, Tollgate's ledger beside Anthropic's usage
// report. Anthropic keys are matched to Tollgate credentials through `partial_key_hint`; the report's
// tokens are priced with Tollgate's own price table (the cost report cannot be grouped by key). Drift is
// Anthropic's figure minus Tollgate's, in tokens and micro-USD, exact integers.
import { costMicro } from '../pricing/cost.js';
import { bareModelId, type ModelPrice } from '../pricing/models.js';
import type { ReportedUsage } from './reports.js';

export interface TokenFigures {
  input_tokens: number;
  output_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  cache_read_tokens: number;
  web_search_requests: number;
}

/** Tollgate's ledger for one UTC day × credential (id) × model. */
export interface LedgerFigures extends TokenFigures {
  readonly day: string;
  readonly credentialId: string;
  readonly model: string;
  readonly cost_micro_usd: number;
}

export interface KeyInfo {
  readonly id: string;
  readonly name: string;
  readonly partial_key_hint: string | null;
}

export interface CredentialInfo {
  readonly id: string;
  readonly name: string;
  readonly hint: string;
}

/** `drift`: the figures differ; `not_through_tollgate`: a key that is no Tollgate credential; `unpriced`: no price. */
export type ReconcileFlag = 'drift' | 'not_through_tollgate' | 'unpriced';

export interface ReconcileRow {
  day: string;
  credential: string | null;
  api_key_id: string | null;
  api_key_name: string | null;
  model: string;
  tollgate: TokenFigures & { cost_micro_usd: number };
  anthropic: TokenFigures & { cost_micro_usd: number | null };
  drift_tokens: number;
  /** null when Anthropic's figure cannot be priced (a model missing from the price table). */
  drift_micro_usd: number | null;
  flag: ReconcileFlag | null;
}

export interface ReconcileInput {
  readonly reported: readonly ReportedUsage[];
  readonly ledger: readonly LedgerFigures[];
  readonly keys: readonly KeyInfo[];
  readonly credentials: readonly CredentialInfo[];
  readonly price: (model: string) => ModelPrice | null;
}

const zero = (): TokenFigures => ({
  input_tokens: 0,
  output_tokens: 0,
  cache_write_5m_tokens: 0,
  cache_write_1h_tokens: 0,
  cache_read_tokens: 0,
  web_search_requests: 0,
});

const TOKEN_KINDS = [
  'input_tokens',
  'output_tokens',
  'cache_write_5m_tokens',
  'cache_write_1h_tokens',
  'cache_read_tokens',
] as const;

export function totalTokens(t: TokenFigures): number {
  return TOKEN_KINDS.reduce((sum, kind) => sum + t[kind], 0);
}

function addInto(into: TokenFigures, from: TokenFigures): void {
  for (const kind of [...TOKEN_KINDS, 'web_search_requests'] as const) into[kind] += from[kind];
}

/**
 * Anthropic's tokens at Tollgate's rates. A day's sum cannot say which requests passed a long-context
 * threshold, so the base rates apply (exact for every model without a long-context premium).
 */
export function priceReported(price: ModelPrice, t: TokenFigures): number {
  return costMicro(
    { ...price, longContext: null },
    {
      inputTokens: t.input_tokens,
      outputTokens: t.output_tokens,
      cacheWrite5mTokens: t.cache_write_5m_tokens,
      cacheWrite1hTokens: t.cache_write_1h_tokens,
      cacheReadTokens: t.cache_read_tokens,
      webSearchRequests: t.web_search_requests,
    },
  );
}

interface Cell {
  day: string;
  credentialId: string | null;
  apiKeyId: string | null;
  model: string;
  tollgate: TokenFigures & { cost_micro_usd: number };
  anthropic: TokenFigures;
}

export function reconcile(input: ReconcileInput): ReconcileRow[] {
  const byHint = new Map<string, CredentialInfo>();
  for (const c of input.credentials) if (!byHint.has(c.hint)) byHint.set(c.hint, c);
  const keyById = new Map(input.keys.map((k) => [k.id, k]));
  const credentialById = new Map(input.credentials.map((c) => [c.id, c]));
  // A credential's Anthropic key id (through the hint), so its ledger rows land on the same cell.
  const keyOfCredential = new Map<string, string>();
  const credentialOfKey = new Map<string, CredentialInfo>();
  for (const k of input.keys) {
    const c = k.partial_key_hint === null ? undefined : byHint.get(k.partial_key_hint);
    if (c) {
      credentialOfKey.set(k.id, c);
      if (!keyOfCredential.has(c.id)) keyOfCredential.set(c.id, k.id);
    }
  }

  const cells = new Map<string, Cell>();
  const cell = (day: string, credentialId: string | null, apiKeyId: string | null, model: string): Cell => {
    const id = `${day}\u0000${credentialId ?? `key:${apiKeyId}`}\u0000${model}`;
    let found = cells.get(id);
    if (!found) {
      found = {
        day,
        credentialId,
        apiKeyId,
        model,
        tollgate: { ...zero(), cost_micro_usd: 0 },
        anthropic: zero(),
      };
      cells.set(id, found);
    }
    return found;
  };

  for (const r of input.ledger) {
    const c = cell(r.day, r.credentialId, keyOfCredential.get(r.credentialId) ?? null, bareModelId(r.model));
    addInto(c.tollgate, r);
    c.tollgate.cost_micro_usd += r.cost_micro_usd;
  }
  for (const r of input.reported) {
    const credential = credentialOfKey.get(r.apiKeyId) ?? null;
    const c = cell(r.day, credential?.id ?? null, r.apiKeyId, bareModelId(r.model));
    addInto(c.anthropic, {
      input_tokens: r.uncachedInputTokens,
      output_tokens: r.outputTokens,
      cache_write_5m_tokens: r.cacheWrite5mTokens,
      cache_write_1h_tokens: r.cacheWrite1hTokens,
      cache_read_tokens: r.cacheReadTokens,
      web_search_requests: r.webSearchRequests,
    });
  }

  const rows = [...cells.values()].map((c): ReconcileRow => {
    const price = input.price(c.model);
    const anthropicCost = price === null ? null : priceReported(price, c.anthropic);
    const driftTokens = totalTokens(c.anthropic) - totalTokens(c.tollgate);
    const driftMicro = anthropicCost === null ? null : anthropicCost - c.tollgate.cost_micro_usd;
    const flag: ReconcileFlag | null =
      c.credentialId === null
        ? 'not_through_tollgate'
        : anthropicCost === null
          ? 'unpriced'
          : driftTokens !== 0 ||
              driftMicro !== 0 ||
              c.anthropic.web_search_requests !== c.tollgate.web_search_requests
            ? 'drift'
            : null;
    return {
      day: c.day,
      credential:
        c.credentialId === null ? null : (credentialById.get(c.credentialId)?.name ?? c.credentialId),
      api_key_id: c.apiKeyId,
      api_key_name: c.apiKeyId === null ? null : (keyById.get(c.apiKeyId)?.name ?? null),
      model: c.model,
      tollgate: c.tollgate,
      anthropic: { ...c.anthropic, cost_micro_usd: anthropicCost },
      drift_tokens: driftTokens,
      drift_micro_usd: driftMicro,
      flag,
    };
  });
  return rows.sort(
    (a, b) =>
      a.day.localeCompare(b.day) ||
      (a.credential ?? '\uffff').localeCompare(b.credential ?? '\uffff') ||
      (a.api_key_id ?? '').localeCompare(b.api_key_id ?? '') ||
      a.model.localeCompare(b.model),
  );
}
