// Building the one ledger row each upstream call leaves behind.
import type { Endpoint } from '../db/schema.js';
import { savingsMicro, type Usage } from '../pricing/cost.js';
import type { ModelPrice } from '../pricing/models.js';
import type { UsageRecord } from '../usage/ledger.js';
import type { Caller } from './admission.js';

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
