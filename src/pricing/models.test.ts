import { describe, expect, it } from 'vitest';
import { AppError } from '../lib/errors.js';
import { bareModelId, createPriceBook, type PriceOverride } from './models.js';
import { BUILT_IN_PRICES, WEB_SEARCH_MICRO_PER_REQUEST } from './price-table.js';

function override(input: number, output: number, extra: Partial<PriceOverride> = {}): PriceOverride {
  return {
    input_micro_per_mtok: input,
    output_micro_per_mtok: output,
    cache_write_5m_micro_per_mtok: null,
    cache_write_1h_micro_per_mtok: null,
    cache_read_micro_per_mtok: null,
    min_cacheable_tokens: null,
    ...extra,
  };
}

describe('built-in price table', () => {
  it('follows the published multipliers exactly (5m = 1.25×, 1h = 2×, read = 0.1× input)', () => {
    for (const entry of BUILT_IN_PRICES) {
      for (const rates of [entry.rates, entry.longContext?.rates].filter((r) => r !== undefined)) {
        expect(rates.cacheWrite5m * 4, entry.family).toBe(rates.input * 5);
        expect(rates.cacheWrite1h, entry.family).toBe(rates.input * 2);
        expect(rates.cacheRead * 10, entry.family).toBe(rates.input);
        for (const value of Object.values(rates)) expect(Number.isSafeInteger(value)).toBe(true);
      }
    }
  });

  it('lists each model once, in bare form', () => {
    const ids = BUILT_IN_PRICES.flatMap((e) => e.models);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(bareModelId(id)).toBe(id);
  });

  it('has the long-context premium on Sonnet 4 and 4.5 only', () => {
    const book = createPriceBook({});
    const withTier = book.models().filter((m) => book.lookup(m)?.longContext !== null);
    expect(withTier).toEqual(['claude-sonnet-4', 'claude-sonnet-4-0', 'claude-sonnet-4-5']);
    expect(book.lookup('claude-sonnet-4-5')?.longContext?.rates).toMatchObject({
      input: 6_000_000,
      output: 22_500_000,
    });
  });
});

describe('bareModelId', () => {
  it.each([
    ['claude-sonnet-4-5-20250929', 'claude-sonnet-4-5'],
    ['claude-3-5-haiku-latest', 'claude-3-5-haiku'],
    ['claude-opus-4-20250514', 'claude-opus-4'],
    ['claude-sonnet-4-6', 'claude-sonnet-4-6'],
    ['claude-sonnet-4-5-2025092', 'claude-sonnet-4-5-2025092'], // 7 digits: not a date
    ['claude-sonnet-4-5-2025092x', 'claude-sonnet-4-5-2025092x'],
    ['20250929', '20250929'],
    ['-20250929', '-20250929'],
  ])('%s → %s', (id, bare) => {
    expect(bareModelId(id)).toBe(bare);
  });
});

describe('createPriceBook', () => {
  const book = createPriceBook({});

  it('prices bare, dated and -latest ids alike', () => {
    const bare = book.lookup('claude-sonnet-4-5');
    expect(bare?.rates.input).toBe(3_000_000);
    expect(book.lookup('claude-sonnet-4-5-20250929')).toBe(bare);
    expect(book.lookup('claude-3-5-haiku-latest')?.rates.cacheRead).toBe(80_000);
    expect(book.lookup('claude-opus-4-1-20250805')?.rates.output).toBe(75_000_000);
    expect(book.lookup('claude-opus-4-5-20251101')?.rates.input).toBe(5_000_000);
    expect(book.lookup('claude-haiku-4-5-20251001')?.minCacheableTokens).toBe(4_096);
    expect(bare?.webSearchMicroPerRequest).toBe(WEB_SEARCH_MICRO_PER_REQUEST);
    expect(bare?.source).toBe('built-in');
  });

  it('returns null for an unknown model, never a zero price', () => {
    expect(book.lookup('claude-unknown-9')).toBeNull();
    expect(book.lookup('claude-unknown-9-20260101')).toBeNull();
    expect(book.lookup('')).toBeNull();
    expect(book.lookup('claude-sonnet-4-5-extra')).toBeNull();
  });

  it('lets a bare override win over the table and cover dated forms', () => {
    const custom = createPriceBook({ 'claude-sonnet-4-6': override(4_000_000, 20_000_000) });
    const price = custom.lookup('claude-sonnet-4-6-20260217');
    expect(price?.source).toBe('config');
    expect(price?.rates).toEqual({
      input: 4_000_000,
      output: 20_000_000,
      cacheWrite5m: 5_000_000,
      cacheWrite1h: 8_000_000,
      cacheRead: 400_000,
    });
    expect(price?.minCacheableTokens).toBe(1_024); // kept from the built-in entry
  });

  it('applies a dated override to that exact id only', () => {
    const custom = createPriceBook({ 'claude-sonnet-4-5-20250929': override(1_000_000, 2_000_000) });
    expect(custom.lookup('claude-sonnet-4-5-20250929')?.rates.input).toBe(1_000_000);
    expect(custom.lookup('claude-sonnet-4-5-20251231')?.rates.input).toBe(3_000_000);
    expect(custom.lookup('claude-sonnet-4-5')?.rates.input).toBe(3_000_000);
    // The built-in long-context premium of the model stays.
    expect(custom.lookup('claude-sonnet-4-5-20250929')?.longContext?.rates.input).toBe(6_000_000);
  });

  it('prices a new model from config, with explicit cache rates and minimum', () => {
    const custom = createPriceBook({
      'claude-future-1': override(7_000_001, 9, {
        cache_write_5m_micro_per_mtok: 1,
        cache_read_micro_per_mtok: 2,
        min_cacheable_tokens: 512,
      }),
    });
    const price = custom.lookup('claude-future-1-20270101');
    expect(price?.rates).toEqual({
      input: 7_000_001,
      output: 9,
      cacheWrite5m: 1,
      cacheWrite1h: 14_000_002,
      cacheRead: 2,
    });
    expect(price?.minCacheableTokens).toBe(512);
    expect(price?.longContext).toBeNull();
    expect(custom.models()).toContain('claude-future-1');
  });

  it('rounds a derived cache rate up when the multiplier leaves a fraction', () => {
    const custom = createPriceBook({ 'claude-x': override(3, 3) });
    expect(custom.lookup('claude-x')?.rates).toMatchObject({
      cacheWrite5m: 4,
      cacheWrite1h: 6,
      cacheRead: 1,
    });
  });

  it('refuses an override that is not a whole non-negative rate', () => {
    expect(() => createPriceBook({ 'claude-x': override(-1, 3) })).toThrow(AppError);
    expect(() => createPriceBook({ 'claude-x': override(1.5, 3) })).toThrow(/pricing\.claude-x\.input/);
  });

  it('lists bare ids, sorted and deduplicated', () => {
    const custom = createPriceBook({ 'claude-sonnet-4-5-20250929': override(1, 1) });
    const models = custom.models();
    expect(models).toEqual([...models].sort());
    expect(models.filter((m) => m === 'claude-sonnet-4-5')).toHaveLength(1);
    expect(models).toContain('claude-3-5-haiku');
    expect(models).toContain('claude-sonnet-5-5');
  });
});
