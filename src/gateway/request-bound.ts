// The worst case of a Messages request, before it is forwarded: what Tollgate adds to the body so the
// bound holds upstream too (server-tool `max_uses`, web_fetch `max_content_tokens`, an automatic cache
// breakpoint), the prompt-token upper bound of what is forwarded — capped per sampling at the context
// window the request is served with — and its cost at the model's dearest applicable rates.
import type { IncomingHttpHeaders } from 'node:http';
import { type CostBound, worstCaseMicro } from '../pricing/cost.js';
import { inputTokenUpperBound } from '../pricing/input-bound.js';
import type { ModelPrice } from '../pricing/models.js';
import { CONTEXT_1M_TOKENS } from '../pricing/price-table.js';
import { webSearchUsesBound } from '../pricing/server-tools.js';
import type { AdmissionPolicy } from './admission.js';
import { withAutoCache } from './prompt-cache.js';

export type RequestBound =
  | {
      ok: true;
      /** The body to forward: the client's own object unless Tollgate patched it. */
      forwarded: Record<string, unknown>;
      autoCached: boolean;
      bound: CostBound;
      worstCaseMicro: number;
    }
  | { ok: false; unbounded: string };

/** The prefix of every long-context beta value (`context-1m-2025-08-07`, and later dates). */
const CONTEXT_1M_BETA = 'context-1m';

/**
 * Whether `anthropic-beta` asks for the 1M window: one of its comma-separated values, in any of its
 * repeated headers. Any value containing `context-1m` counts, whatever the model: a larger window only
 * makes the bound more conservative, and the API decides which models honour it.
 */
export function asksForLongContext(beta: string | string[] | undefined): boolean {
  if (beta === undefined) return false;
  if (typeof beta === 'string') return beta.toLowerCase().includes(CONTEXT_1M_BETA);
  for (const value of beta) if (value.toLowerCase().includes(CONTEXT_1M_BETA)) return true;
  return false;
}

/** The context window a request is served with: the model's own, or 1M when the beta asks for it. */
export function contextWindow(price: ModelPrice, headers: IncomingHttpHeaders): number {
  const own = price.contextWindowTokens;
  return own < CONTEXT_1M_TOKENS && asksForLongContext(headers['anthropic-beta']) ? CONTEXT_1M_TOKENS : own;
}

/** What Tollgate forwards: the client's body, or a copy with server-tool limits or a cache breakpoint. */
export interface Forwarded {
  readonly body: Record<string, unknown>;
  readonly autoCached: boolean;
  /** Most web searches the forwarded body can bill. */
  readonly webSearchUses: number;
}

/** The first half of boundRequest: the body to forward, patched so the bound holds upstream too. */
export function forwardedBody(
  policy: AdmissionPolicy,
  price: ModelPrice,
  body: Record<string, unknown>,
): Forwarded {
  let forwarded: Record<string, unknown> = body;
  const servers = webSearchUsesBound(body, policy.webSearchDefaultMaxUses);
  if (servers.patchedTools) forwarded = { ...forwarded, tools: servers.patchedTools };
  const cached = policy.promptCaching === 'auto' ? withAutoCache(forwarded, price.minCacheableTokens) : null;
  if (cached) forwarded = cached;
  return { body: forwarded, autoCached: cached !== null, webSearchUses: servers.uses };
}

/** The second half: the bound of what is forwarded (`maxTokens`: the shape-checked `max_tokens`). */
export function boundForwarded(
  policy: AdmissionPolicy,
  price: ModelPrice,
  f: Forwarded,
  maxTokens: number,
  headers: IncomingHttpHeaders,
): RequestBound {
  const window = contextWindow(price, headers);
  const input = inputTokenUpperBound(f.body, {
    imageTokenAllowance: policy.imageTokenAllowance,
    // A document by reference (URL, file id, PDF) can fill the whole window: a smaller allowance would
    // not be an upper bound, and the cap at the window keeps a larger one from counting twice.
    documentTokenAllowance: Math.max(policy.documentTokenAllowance, window),
    defaultMaxUses: policy.webSearchDefaultMaxUses,
    contextWindowTokens: window,
  });
  if ('unbounded' in input) return { ok: false, unbounded: input.unbounded };
  const bound: CostBound = {
    inputTokensUpperBound: input.tokens,
    maxOutputTokens: maxTokens,
    webSearchUses: f.webSearchUses,
    cacheWrite1hPossible: input.cacheWrite1hPossible,
    // What a cut stream charges per started server-tool use (a fetch's result can be larger than a search's).
    serverToolResultTokensPerUse: input.resultTokensPerUse,
  };
  return {
    ok: true,
    forwarded: f.body,
    autoCached: f.autoCached,
    bound,
    worstCaseMicro: worstCaseMicro(price, bound),
  };
}

/** Bounds `body` (already shape-checked: `max_tokens` is a positive safe integer). */
export function boundRequest(
  policy: AdmissionPolicy,
  price: ModelPrice,
  body: Record<string, unknown>,
  headers: IncomingHttpHeaders,
): RequestBound {
  return boundForwarded(
    policy,
    price,
    forwardedBody(policy, price, body),
    body.max_tokens as number,
    headers,
  );
}
