// Building the one ledger row each upstream call leaves behind, and what it is charged when the
// upstream's own figures are missing or unreadable (never less than Anthropic can bill).
import type { Endpoint } from '../db/schema.js';
import { type CostBound, costMicro, savingsMicro, type Usage } from '../pricing/cost.js';
import { DEFAULT_SERVER_TOOL_RESULT_ALLOWANCE } from '../pricing/input-bound.js';
import type { ModelPrice } from '../pricing/models.js';
import type { UsageRecord } from '../usage/ledger.js';
import type { Caller } from './admission.js';
import type { TapResult } from './sse/usage-tap.js';

export interface CallFacts {
  id: string;
  at: number;
  endpoint: Endpoint;
  model: string | null;
  credentialId: string | null;
  usage: Usage;
  /** What the call is charged: its usage at the model's price, or the reserved worst case when the
   * usage could not be read (the ledger is the bill of record and never under-counts). */
  costMicro: number;
  /** For the savings of prompt caching; null when nothing was priced. */
  price: ModelPrice | null;
  latencyMs: number;
  status: number;
  outcome: string;
  upstreamRequestId: string | null;
  stream: boolean;
  partial: boolean;
  estimated: boolean;
  attempts: number;
}

export function usageRecord(caller: Caller, f: CallFacts): UsageRecord {
  const cost = f.costMicro;
  const u = f.usage;
  const cached = u.cacheWrite5mTokens + u.cacheWrite1hTokens + u.cacheReadTokens > 0;
  // Without cache tokens every prompt token was plain input: nothing saved, nothing to compute.
  const saved = f.price && cost > 0 && cached ? savingsMicro(f.price, u).savedMicro : 0;
  return {
    id: f.id,
    at: f.at,
    endpoint: f.endpoint,
    key_id: caller.key.id,
    user_id: caller.subject.userId,
    team_id: caller.subject.teamId,
    service_user_id: caller.serviceUserId,
    credential_id: f.credentialId,
    model: f.model,
    input_tokens: f.usage.inputTokens,
    output_tokens: f.usage.outputTokens,
    cache_write_5m_tokens: f.usage.cacheWrite5mTokens,
    cache_write_1h_tokens: f.usage.cacheWrite1hTokens,
    cache_read_tokens: f.usage.cacheReadTokens,
    web_search_requests: f.usage.webSearchRequests,
    cost_micro: cost,
    saved_micro: saved,
    latency_ms: Math.round(f.latencyMs),
    status: f.status,
    outcome: f.outcome,
    upstream_request_id: f.upstreamRequestId,
    stream: f.stream ? 1 : 0,
    partial: f.partial ? 1 : 0,
    estimated: f.estimated ? 1 : 0,
    attempts: f.attempts,
  };
}

/** What a charge needs of the admitted request: its price and the bound its reservation covers. */
export interface ChargeBasis {
  readonly price: ModelPrice;
  readonly bound: CostBound;
  readonly worstCaseMicro: number;
}

/**
 * The usage to charge for figures the upstream reported in full (a JSON answer, a stream's final
 * usage): themselves, or null — charge the reserved worst case — when they are absurd for the request
 * (more output than its max_tokens, which the API never exceeds).
 */
export function reportedUsage(basis: ChargeBasis, usage: Usage | null): Usage | null {
  return usage !== null && usage.outputTokens <= basis.bound.maxOutputTokens ? usage : null;
}

/**
 * An UPPER bound of what Anthropic can bill for a stream that ended without its final usage (client
 * gone, `error` event, broken connection, unreadable event), from what the stream showed:
 * - output: the larger of the delta estimate and the last reported figure — and max_tokens once a
 *   thinking or redacted_thinking block started (the API streams a summary but bills the full thinking);
 * - web searches: the larger of the reported figure and the web_search uses that started;
 * - input: the reported figure plus each started server-tool use's result allowance (its result is read
 *   as input by the next step of the same request).
 * Null — charge the reserved worst case — when in doubt: no readable message_start, an unknown block or
 * server tool, a usage figure that is not a count, a started web fetch whose allowance the bound does not
 * give; and when the bound would cost more than the worst case (both are upper bounds: the smaller wins).
 */
export function cutStreamUsage(basis: ChargeBasis, tap: TapResult): Usage | null {
  if (tap.inDoubt || !tap.started) return null;
  const perUse = basis.bound.serverToolResultTokensPerUse;
  // A started use the bound did not allow for (no allowance given, or none declared): in doubt.
  if (tap.fetchUses > 0 && !perUse) return null;
  if (tap.searchUses > 0 && perUse === 0) return null;
  const u = tap.usage;
  const usage: Usage = {
    inputTokens:
      u.inputTokens + (tap.searchUses + tap.fetchUses) * (perUse ?? DEFAULT_SERVER_TOOL_RESULT_ALLOWANCE),
    outputTokens: tap.thinking ? Math.max(u.outputTokens, basis.bound.maxOutputTokens) : u.outputTokens,
    cacheWrite5mTokens: u.cacheWrite5mTokens,
    cacheWrite1hTokens: u.cacheWrite1hTokens,
    cacheReadTokens: u.cacheReadTokens,
    webSearchRequests: Math.max(u.webSearchRequests, tap.searchUses),
  };
  return costMicro(basis.price, usage) > basis.worstCaseMicro ? null : usage;
}

/** The usage to charge for a relayed stream: its own final figures when it showed them, else a bound. */
export function streamUsage(basis: ChargeBasis, tap: TapResult): Usage | null {
  if (tap.complete && !tap.estimated && !tap.inDoubt) return reportedUsage(basis, tap.usage);
  return cutStreamUsage(basis, tap);
}
