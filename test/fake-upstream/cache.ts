// Emulated prompt cache: entries keyed by (api key as the org, model, prefix hash), expiring 5 min / 1 h
// after last use. The minimum cacheable prompt length of the real API is deliberately ignored, so a
// breakpoint on a short prompt is cached too (tests stay small).

import type { PromptAnalysis } from './prompt.js';

export interface CacheOutcome {
  /** Uncached input: tokens after the last breakpoint. */
  input: number;
  read: number;
  creation5m: number;
  creation1h: number;
}

const TTL_MS = { '5m': 5 * 60_000, '1h': 60 * 60_000 } as const;
const SWEEP_ABOVE = 100_000;

export interface PromptCache {
  /** Splits the prompt into read / created / uncached tokens and stores or refreshes the entries. */
  apply(apiKey: string, model: string, prompt: PromptAnalysis): CacheOutcome;
  clear(): void;
}

export function createPromptCache(now: () => number): PromptCache {
  const expiresAt = new Map<string, number>();

  const sweep = (t: number) => {
    for (const [key, expiry] of expiresAt) if (expiry <= t) expiresAt.delete(key);
  };

  return {
    apply(apiKey, model, prompt) {
      const bps = prompt.breakpoints;
      const lastBp = bps[bps.length - 1];
      if (!lastBp) return { input: prompt.total, read: 0, creation5m: 0, creation1h: 0 };
      const t = now();
      const keys = bps.map((bp) => `${apiKey}\u0000${model}\u0000${bp.hash}`);

      // Mirror the API: the longest live prefix is read, the tokens from it to the last breakpoint are
      // written (each segment at the ttl of the breakpoint that closes it), the rest is plain input.
      let hit = -1;
      for (let i = bps.length - 1; i >= 0; i--) {
        const expiry = expiresAt.get(keys[i] ?? '');
        if (expiry !== undefined && expiry > t) {
          hit = i;
          break;
        }
      }
      const out: CacheOutcome = {
        input: prompt.total - lastBp.tokens,
        read: hit >= 0 ? (bps[hit]?.tokens ?? 0) : 0,
        creation5m: 0,
        creation1h: 0,
      };
      for (let i = hit + 1; i < bps.length; i++) {
        const bp = bps[i];
        if (!bp) continue;
        const segment = bp.tokens - (bps[i - 1]?.tokens ?? 0);
        if (bp.ttl === '1h') out.creation1h += segment;
        else out.creation5m += segment;
      }

      if (expiresAt.size > SWEEP_ABOVE) sweep(t);
      for (let i = 0; i < bps.length; i++) {
        const bp = bps[i];
        const key = keys[i];
        if (bp && key !== undefined) expiresAt.set(key, t + TTL_MS[bp.ttl]);
      }
      return out;
    },
    clear() {
      expiresAt.clear();
    },
  };
}
