// The worst case of a Messages request, before it is forwarded: what Tollgate adds to the body so the
// bound holds upstream too (server-tool `max_uses`, an automatic cache breakpoint), the prompt-token
// upper bound of what is forwarded, and its cost at the model's dearest applicable rates.
import type { IncomingHttpHeaders } from 'node:http';
import { type CostBound, worstCaseMicro } from '../pricing/cost.js';
import { inputTokenUpperBound } from '../pricing/input-bound.js';
import type { ModelPrice } from '../pricing/models.js';
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

/** Bounds `body` (already shape-checked: `max_tokens` is a positive safe integer). */
export function boundRequest(
  policy: AdmissionPolicy,
  price: ModelPrice,
  body: Record<string, unknown>,
  _headers: IncomingHttpHeaders,
): RequestBound {
  let forwarded: Record<string, unknown> = body;
  const servers = webSearchUsesBound(body, policy.webSearchDefaultMaxUses);
  if (servers.patchedTools) forwarded = { ...forwarded, tools: servers.patchedTools };
  const cached = policy.promptCaching === 'auto' ? withAutoCache(forwarded, price.minCacheableTokens) : null;
  if (cached) forwarded = cached;
  const input = inputTokenUpperBound(forwarded, {
    imageTokenAllowance: policy.imageTokenAllowance,
    documentTokenAllowance: policy.documentTokenAllowance,
    defaultMaxUses: policy.webSearchDefaultMaxUses,
  });
  if ('unbounded' in input) return { ok: false, unbounded: input.unbounded };
  const bound: CostBound = {
    inputTokensUpperBound: input.tokens,
    maxOutputTokens: body.max_tokens as number,
    webSearchUses: servers.uses,
    cacheWrite1hPossible: input.cacheWrite1hPossible,
  };
  return {
    ok: true,
    forwarded,
    autoCached: cached !== null,
    bound,
    worstCaseMicro: worstCaseMicro(price, bound),
  };
}
