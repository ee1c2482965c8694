import { describe, expect, it } from 'vitest';
import { type CostBound, costMicro, worstCaseMicro } from '../pricing/cost.js';
import { DEFAULT_SERVER_TOOL_RESULT_ALLOWANCE } from '../pricing/input-bound.js';
import { createPriceBook, type ModelPrice } from '../pricing/models.js';
import type { TapResult } from './sse/usage-tap.js';
import { type ChargeBasis, cutStreamUsage, reportedUsage, streamUsage } from './usage-record.js';

const price = createPriceBook({}).lookup('claude-sonnet-4-6') as ModelPrice;
const basisOf = (bound: Partial<CostBound> = {}): ChargeBasis => {
  const b: CostBound = {
    inputTokensUpperBound: 100_000,
    maxOutputTokens: 8_000,
    webSearchUses: 5,
    cacheWrite1hPossible: false,
    ...bound,
  };
  return { price, bound: b, worstCaseMicro: worstCaseMicro(price, b) };
};

function tap(over: Partial<TapResult> = {}): TapResult {
  return {
    usage: {
      inputTokens: 1_000,
      outputTokens: 40,
      cacheWrite5mTokens: 0,
      cacheWrite1hTokens: 0,
      cacheReadTokens: 0,
      webSearchRequests: 0,
      webFetchRequests: 0,
      model: null,
      messageId: null,
      stopReason: null,
    },
    complete: false,
    errorType: null,
    estimated: true,
    deltas: 10,
    started: true,
    thinking: false,
    searchUses: 0,
    fetchUses: 0,
    inDoubt: false,
    ...over,
  };
}

describe('what a cut stream is charged', () => {
  it('is what it showed when it showed only text (positive control)', () => {
    expect(cutStreamUsage(basisOf(), tap())).toMatchObject({ inputTokens: 1_000, outputTokens: 40 });
  });

  it('bills max_tokens of output once a thinking block started', () => {
    expect(cutStreamUsage(basisOf(), tap({ thinking: true }))?.outputTokens).toBe(8_000);
  });

  it('bills each started web search and its result allowance', () => {
    const u = cutStreamUsage(basisOf(), tap({ searchUses: 2 }));
    expect(u).toMatchObject({
      webSearchRequests: 2,
      inputTokens: 1_000 + 2 * DEFAULT_SERVER_TOOL_RESULT_ALLOWANCE,
    });
    const given = cutStreamUsage(basisOf({ serverToolResultTokensPerUse: 7_000 }), tap({ fetchUses: 1 }));
    expect(given?.inputTokens).toBe(8_000);
  });

  it('is the worst case (null) when in doubt', () => {
    const basis = basisOf();
    expect(cutStreamUsage(basis, tap({ inDoubt: true }))).toBeNull();
    expect(cutStreamUsage(basis, tap({ started: false }))).toBeNull();
    expect(cutStreamUsage(basis, tap({ fetchUses: 1 }))).toBeNull(); // the bound gives no fetch allowance
  });

  it('is never more than the reserved worst case (the smaller upper bound wins)', () => {
    const basis = basisOf({ inputTokensUpperBound: 2_000, webSearchUses: 1 });
    const u = cutStreamUsage(basis, tap({ searchUses: 1, thinking: true }));
    expect(u).toBeNull(); // 1,000 + 25,000 input would cost more than the 2,000-token worst case
    const within = cutStreamUsage(basisOf(), tap({ searchUses: 1, thinking: true }));
    expect(within && costMicro(price, within)).toBeLessThanOrEqual(basisOf().worstCaseMicro);
  });

  it('trusts a complete stream’s final figures, unless they are absurd for the request', () => {
    const done = tap({ complete: true, estimated: false });
    expect(streamUsage(basisOf(), done)).toBe(done.usage);
    expect(streamUsage(basisOf(), { ...done, inDoubt: true })).toBeNull();
    expect(reportedUsage(basisOf({ maxOutputTokens: 10 }), done.usage)).toBeNull();
  });
});
