import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CostBound,
  costMicro,
  MAX_PLAUSIBLE_COUNT,
  promptTokens,
  ratesFor,
  savingsMicro,
  type Usage,
  usageFromAnthropic,
  worstCaseMicro,
  worstCaseUsage,
  ZERO_USAGE,
} from './cost.js';
import { createPriceBook, type ModelPrice, type PriceOverride } from './models.js';

const book = createPriceBook({});

function price(model: string): ModelPrice {
  const found = book.lookup(model);
  if (!found) throw new Error(`no price for ${model}`);
  return found;
}

function usage(partial: Partial<Usage>): Usage {
  return {
    ...ZERO_USAGE,
    ...partial,
  };
}

/** Exact cost in pico-USD, computed independently in BigInt. */
function exactPico(p: ModelPrice, u: Usage): bigint {
  const r = ratesFor(p, promptTokens(u));
  const b = BigInt;
  return (
    b(u.inputTokens) * b(r.input) +
    b(u.outputTokens) * b(r.output) +
    b(u.cacheWrite5mTokens) * b(r.cacheWrite5m) +
    b(u.cacheWrite1hTokens) * b(r.cacheWrite1h) +
    b(u.cacheReadTokens) * b(r.cacheRead) +
    b(u.webSearchRequests) * b(p.webSearchMicroPerRequest) * 1_000_000n
  );
}

describe('costMicro — hand-computed values', () => {
  it.each<[string, string, Partial<Usage>, number]>([
    ['Sonnet 4.6: 1,000 cache reads = $0.0003', 'claude-sonnet-4-6', { cacheReadTokens: 1_000 }, 300],
    ['Haiku 4.5: 1 cache read = 0.1 µUSD → 0', 'claude-haiku-4-5', { cacheReadTokens: 1 }, 0],
    ['Haiku 4.5: 5 cache reads = 0.5 µUSD → 1 (half up)', 'claude-haiku-4-5', { cacheReadTokens: 5 }, 1],
    ['Haiku 4.5: 4 cache reads = 0.4 µUSD → 0', 'claude-haiku-4-5', { cacheReadTokens: 4 }, 0],
    // Rounded once per record: 0.3 + 1.25 = 1.55 → 2 (per-term rounding would give 0 + 1 = 1).
    ['Haiku 4.5: once per record', 'claude-haiku-4-5', { cacheReadTokens: 3, cacheWrite5mTokens: 1 }, 2],
    [
      'Opus 4.5: 1M input, 1k output, 10k 1h writes, 3 searches',
      'claude-opus-4-5-20251101',
      { inputTokens: 1_000_000, outputTokens: 1_000, cacheWrite1hTokens: 10_000, webSearchRequests: 3 },
      5_000_000 + 25_000 + 100_000 + 30_000,
    ],
    [
      'Opus 4.1: 1,000 of each token kind',
      'claude-opus-4-1',
      {
        inputTokens: 1_000,
        outputTokens: 1_000,
        cacheWrite5mTokens: 1_000,
        cacheWrite1hTokens: 1_000,
        cacheReadTokens: 1_000,
      },
      15_000 + 75_000 + 18_750 + 30_000 + 1_500,
    ],
    [
      'Haiku 3.5: 1,000 reads + 1,000 1h writes',
      'claude-3-5-haiku-20241022',
      { cacheReadTokens: 1_000, cacheWrite1hTokens: 1_000 },
      80 + 1_600,
    ],
    ['Sonnet 5: 333 input + 7 output', 'claude-sonnet-5', { inputTokens: 333, outputTokens: 7 }, 666 + 70],
    ['web search alone: $10 per 1,000', 'claude-sonnet-4-6', { webSearchRequests: 1 }, 10_000],
  ])('%s', (_label, model, u, expected) => {
    expect(costMicro(price(model), usage(u))).toBe(expected);
  });

  it('bills Sonnet 4.5 at long-context rates above 200,000 prompt tokens, not at 200,000', () => {
    const sonnet45 = price('claude-sonnet-4-5-20250929');
    expect(costMicro(sonnet45, usage({ inputTokens: 200_000, outputTokens: 1_000 }))).toBe(600_000 + 15_000);
    expect(costMicro(sonnet45, usage({ inputTokens: 200_001, outputTokens: 1_000 }))).toBe(
      1_200_006 + 22_500,
    );
  });

  it('the threshold counts every prompt kind', () => {
    const sonnet4 = price('claude-sonnet-4');
    // 200,000 in total: base rates. 300,000 + 29,999.7 + 3.75 = 330,003.45 → 330,003.
    expect(
      costMicro(sonnet4, usage({ inputTokens: 100_000, cacheReadTokens: 99_999, cacheWrite5mTokens: 1 })),
    ).toBe(330_003);
    // 200,001 in total: long rates. 600,000 + 60,000.6 = 660,000.6 → 660,001.
    expect(costMicro(sonnet4, usage({ inputTokens: 100_000, cacheReadTokens: 100_001 }))).toBe(660_001);
    expect(costMicro(sonnet4, usage({ inputTokens: 200_000, cacheWrite1hTokens: 1 }))).toBe(1_200_000 + 12);
  });

  it('has no premium on Sonnet 4.6', () => {
    expect(costMicro(price('claude-sonnet-4-6'), usage({ inputTokens: 200_001 }))).toBe(600_003);
  });

  it('is exact beyond 2^53 pico-USD (BigInt path)', () => {
    const opus4 = price('claude-opus-4');
    expect(costMicro(opus4, usage({ outputTokens: 1_000_000_000_000 }))).toBe(75_000_000_000_000);
    expect(costMicro(opus4, usage({ outputTokens: 1_000_000_000_001, cacheReadTokens: 1 }))).toBe(
      75_000_000_000_077, // 75 + 1.5 = 76.5 → 77
    );
  });

  it('refuses malformed usage instead of pricing it', () => {
    expect(() => costMicro(price('claude-sonnet-4-6'), usage({ inputTokens: -1 }))).toThrow(/inputTokens/);
    expect(() => costMicro(price('claude-sonnet-4-6'), usage({ outputTokens: 0.5 }))).toThrow(/outputTokens/);
  });
});

describe('costMicro — properties', () => {
  const models = book.models();
  const count = fc.oneof(fc.nat({ max: 300_000 }), fc.nat({ max: 1_000_000_000_000 }));
  const anyUsage = fc.record({
    inputTokens: count,
    outputTokens: count,
    cacheWrite5mTokens: count,
    cacheWrite1hTokens: count,
    cacheReadTokens: count,
    webSearchRequests: fc.nat({ max: 1_000 }),
  });

  it('rounds once per record: within 0.5 µUSD of the exact value, half up', () => {
    fc.assert(
      fc.property(fc.constantFrom(...models), anyUsage, (model, u) => {
        const p = price(model);
        const pico = exactPico(p, u);
        const micro = BigInt(costMicro(p, u));
        expect(micro).toBe((pico + 500_000n) / 1_000_000n);
        const diff = micro * 1_000_000n - pico;
        expect(diff <= 500_000n && diff > -500_000n).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('savingsMicro', () => {
  it('compares with every prompt token billed as plain input', () => {
    const p = price('claude-sonnet-4-6');
    // 10,000 reads at 0.3 µUSD instead of 3 µUSD each save 27,000 µUSD.
    expect(savingsMicro(p, usage({ inputTokens: 100, cacheReadTokens: 10_000, outputTokens: 10 }))).toEqual({
      uncachedMicro: 30_300 + 150,
      actualMicro: 300 + 3_000 + 150,
      savedMicro: 27_000,
    });
  });

  it('is negative when only cache writes happened', () => {
    const p = price('claude-sonnet-4-6');
    const s = savingsMicro(p, usage({ cacheWrite5mTokens: 1_000, cacheWrite1hTokens: 1_000 }));
    expect(s).toEqual({ uncachedMicro: 6_000, actualMicro: 3_750 + 6_000, savedMicro: -3_750 });
  });
});

describe('worstCaseMicro', () => {
  const p = price('claude-sonnet-4-5');
  const bound = (b: Partial<CostBound>): CostBound => ({
    inputTokensUpperBound: 0,
    maxOutputTokens: 0,
    webSearchUses: 0,
    cacheWrite1hPossible: false,
    ...b,
  });

  it('prices input at the 5 min write rate, or the 1 h rate when a 1 h breakpoint is possible', () => {
    expect(worstCaseMicro(p, bound({ inputTokensUpperBound: 1_000, maxOutputTokens: 100 }))).toBe(
      3_750 + 1_500,
    );
    expect(worstCaseMicro(p, bound({ inputTokensUpperBound: 1_000, cacheWrite1hPossible: true }))).toBe(
      6_000,
    );
  });

  it('uses the long-context tier once the bound can exceed 200,000, and rounds up', () => {
    expect(worstCaseMicro(p, bound({ inputTokensUpperBound: 200_000 }))).toBe(750_000);
    // 200,001 × 7.5 + 1 × 22.5 = 1,500,030 exactly; 200,001 × 7.5 alone = 1,500,007.5 → 1,500,008.
    expect(worstCaseMicro(p, bound({ inputTokensUpperBound: 200_001, maxOutputTokens: 1 }))).toBe(1_500_030);
    expect(worstCaseMicro(p, bound({ inputTokensUpperBound: 200_001 }))).toBe(1_500_008);
  });

  it('adds web search uses at their price', () => {
    expect(worstCaseMicro(p, bound({ webSearchUses: 5 }))).toBe(50_000);
  });

  const partOf = (max: number) => fc.nat({ max });
  const scenario = fc
    .record({
      inputTokensUpperBound: fc.oneof(fc.nat({ max: 5_000 }), fc.nat({ max: 400_000 })),
      maxOutputTokens: fc.nat({ max: 128_000 }),
      webSearchUses: fc.nat({ max: 20 }),
      cacheWrite1hPossible: fc.boolean(),
    })
    .chain((b) =>
      fc.record({
        bound: fc.constant(b),
        cuts: fc.array(partOf(b.inputTokensUpperBound), { minLength: 4, maxLength: 4 }),
        output: partOf(b.maxOutputTokens),
        searches: partOf(b.webSearchUses),
      }),
    );
  const rate = fc.nat({ max: 100_000_000 });
  const anyOverride: fc.Arbitrary<PriceOverride> = fc.record({
    input_micro_per_mtok: rate,
    output_micro_per_mtok: rate,
    cache_write_5m_micro_per_mtok: fc.option(rate),
    cache_write_1h_micro_per_mtok: fc.option(rate),
    cache_read_micro_per_mtok: fc.option(rate),
    min_cacheable_tokens: fc.constant(null),
  });

  it('is never below the cost of any usage consistent with the bound (built-in and overridden prices)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...book.models()),
        fc.option(anyOverride),
        scenario,
        (model, override, { bound: b, cuts, output, searches }) => {
          const priced = override ? createPriceBook({ [model]: override }).lookup(model) : book.lookup(model);
          if (!priced) throw new Error('unpriced');
          const [c1, c2, c3, c4] = [...cuts].sort((x, y) => x - y) as [number, number, number, number];
          const oneHour = b.cacheWrite1hPossible ? c3 - c2 : 0;
          const u: Usage = {
            inputTokens: c1,
            cacheReadTokens: c2 - c1,
            cacheWrite1hTokens: oneHour,
            cacheWrite5mTokens: c4 - c3 + (c3 - c2 - oneHour),
            outputTokens: output,
            webSearchRequests: searches,
          };
          expect(promptTokens(u)).toBeLessThanOrEqual(b.inputTokensUpperBound);
          expect(worstCaseMicro(priced, b)).toBeGreaterThanOrEqual(costMicro(priced, u));
          // The worst-case usage costs no more than the reservation and, with the built-in prices (an
          // override can make the long-context tier cheaper than the standard one), at least any usage
          // consistent with the bound.
          const worst = costMicro(priced, worstCaseUsage(priced, b));
          expect(worst).toBeLessThanOrEqual(worstCaseMicro(priced, b));
          if (!override) expect(worst).toBeGreaterThanOrEqual(costMicro(priced, u));
        },
      ),
      { numRuns: 3_000 },
    );
  });
});

describe('usageFromAnthropic', () => {
  const IO = { input_tokens: 0, output_tokens: 0 };
  it('reads a complete usage object, using the 5m/1h split', () => {
    expect(
      usageFromAnthropic({
        input_tokens: 377,
        output_tokens: 65,
        cache_creation_input_tokens: 300,
        cache_read_input_tokens: 1_000,
        cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 200 },
        server_tool_use: { web_search_requests: 2, web_fetch_requests: 1 },
        service_tier: 'standard',
      }),
    ).toEqual(
      usage({
        inputTokens: 377,
        outputTokens: 65,
        cacheWrite5mTokens: 100,
        cacheWrite1hTokens: 200,
        cacheReadTokens: 1_000,
        webSearchRequests: 2,
      }),
    );
  });

  it('bills the whole creation total as 5 min writes when there is no split', () => {
    expect(
      usageFromAnthropic({
        input_tokens: 1,
        output_tokens: 0,
        cache_creation_input_tokens: 50,
        cache_creation: null,
      }),
    ).toEqual(usage({ inputTokens: 1, cacheWrite5mTokens: 50 }));
    expect(usageFromAnthropic({ ...IO, cache_creation_input_tokens: 50, cache_creation: {} })).toEqual(
      usage({ cacheWrite5mTokens: 50 }),
    );
  });

  it('never double counts: a split short of the total puts the remainder in 5m; a split alone is used', () => {
    expect(
      usageFromAnthropic({
        ...IO,
        cache_creation_input_tokens: 500,
        cache_creation: { ephemeral_1h_input_tokens: 200 },
      }),
    ).toEqual(usage({ cacheWrite5mTokens: 300, cacheWrite1hTokens: 200 }));
    expect(
      usageFromAnthropic({
        ...IO,
        cache_creation: { ephemeral_5m_input_tokens: 7, ephemeral_1h_input_tokens: 3 },
      }),
    ).toEqual(usage({ cacheWrite5mTokens: 7, cacheWrite1hTokens: 3 }));
    expect(
      usageFromAnthropic({
        ...IO,
        cache_creation_input_tokens: 10,
        cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 10 },
      }),
    ).toEqual(usage({ cacheWrite1hTokens: 10 }));
  });

  it('treats absent and null fields as 0 and rounds a fractional count up', () => {
    expect(usageFromAnthropic({ input_tokens: 0, output_tokens: 2.5, server_tool_use: null })).toEqual(
      usage({ outputTokens: 3 }),
    );
    // input_tokens and output_tokens are always given: without one the usage is unreadable.
    expect(usageFromAnthropic({ input_tokens: null, output_tokens: 2 })).toBeNull();
    expect(usageFromAnthropic({ input_tokens: 2 })).toBeNull();
    expect(usageFromAnthropic({ input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0.1 })).toEqual(
      usage({ cacheReadTokens: 1 }),
    );
  });

  it('reads a usage with any implausible count as unreadable (null: the caller charges the worst case)', () => {
    expect(usageFromAnthropic(null)).toBeNull();
    expect(usageFromAnthropic('usage')).toBeNull();
    const bad = [-5, '9', 1e300, Number.NaN, Number.POSITIVE_INFINITY, MAX_PLAUSIBLE_COUNT + 1, true, [1]];
    for (const value of bad) {
      expect(usageFromAnthropic({ input_tokens: 1, output_tokens: value }), String(value)).toBeNull();
      expect(usageFromAnthropic({ output_tokens: 1, cache_creation_input_tokens: value })).toBeNull();
      expect(
        usageFromAnthropic({ output_tokens: 1, server_tool_use: { web_search_requests: value } }),
      ).toBeNull();
      expect(
        usageFromAnthropic({ output_tokens: 1, cache_creation: { ephemeral_1h_input_tokens: value } }),
      ).toBeNull();
    }
    // Positive control: the same shapes with plausible counts are read.
    expect(usageFromAnthropic({ input_tokens: 1, output_tokens: MAX_PLAUSIBLE_COUNT })).toEqual(
      usage({ inputTokens: 1, outputTokens: MAX_PLAUSIBLE_COUNT }),
    );
  });
});
