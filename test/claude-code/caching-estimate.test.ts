// The prompt-caching estimate in docs/claude-code.md, recomputed with Tollgate's own price table: a
// 4,000-token shared project context sent with 50 requests a day on claude-sonnet-4-6.
import { describe, expect, it } from 'vitest';
import { costMicro, type Usage, ZERO_USAGE } from '../../src/pricing/cost.js';
import { createPriceBook } from '../../src/pricing/models.js';

const sonnet = createPriceBook({}).lookup('claude-sonnet-4-6');
const none = ZERO_USAGE;
const cost = (usage: Partial<Usage>) => costMicro(sonnet ?? expect.unreachable(), { ...none, ...usage });

describe('docs/claude-code.md caching estimate', () => {
  it('prices one 4,000-token context as plain input, a 5-minute cache write and a cache read', () => {
    expect(cost({ inputTokens: 4_000 })).toBe(12_000); // $0.012
    expect(cost({ cacheWrite5mTokens: 4_000 })).toBe(15_000); // $0.015
    expect(cost({ cacheReadTokens: 4_000 })).toBe(1_200); // $0.0012
  });

  it('gives the daily totals of the guide', () => {
    const uncached = 50 * cost({ inputTokens: 4_000 });
    const warm = cost({ cacheWrite5mTokens: 4_000 }) + 49 * cost({ cacheReadTokens: 4_000 });
    const cold = 50 * cost({ cacheWrite5mTokens: 4_000 });
    expect({ uncached, warm, cold }).toEqual({ uncached: 600_000, warm: 73_800, cold: 750_000 });
    expect(uncached - warm).toBe(526_200); // saved a day when the cache stays warm (87.7 %)
    expect(cold - uncached).toBe(150_000); // extra a day in the worst case (+25 %)
  });
});
