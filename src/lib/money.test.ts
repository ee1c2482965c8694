import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppError } from './errors.js';
import { formatUsd, formatUsdFixed, MAX_MICRO, parseUsd, usdToMicro } from './money.js';

function refusal(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('parseUsd', () => {
  it.each([
    ['100', 100_000_000],
    ['0.5', 500_000],
    ['12.345678', 12_345_678],
    ['$7.25', 7_250_000],
    [' 3 ', 3_000_000],
    ['.5', 500_000],
    ['0', 0],
    ['000012.10', 12_100_000],
    ['1000000000', 1_000_000_000_000_000],
  ])('parses %j', (text, micro) => {
    expect(parseUsd(text, 'limit')).toBe(micro);
  });

  it.each([
    ['-5', 'limit must not be negative'],
    ['$-5', 'limit must not be negative'],
    ['1e999', 'no exponent'],
    ['1e3', 'no exponent'],
    ['Infinity', 'finite'],
    ['NaN', 'finite'],
    ['abc', 'amount in USD'],
    ['1.2.3', 'amount in USD'],
    ['5.', 'digits after the decimal point'],
    ['.', 'amount in USD'],
    ['0.0000001', 'more than 6 decimal places'],
    ['1000000000.000001', 'at most 1000000000 USD'],
    ['99999999999999999999999', 'at most 1000000000 USD'],
    ['', 'limit must not be empty'],
    ['$', 'amount in USD'],
  ])('refuses %j', (text, message) => {
    const error = refusal(() => parseUsd(text, 'limit'));
    expect(error.code).toBe('invalid_input');
    expect(error.message).toContain(message);
  });
});

describe('formatUsd', () => {
  it.each([
    [12_500_000, '12.50'],
    [125, '0.000125'],
    [0, '0.00'],
    [1, '0.000001'],
    [1_234_567, '1.234567'],
    [100_000_000, '100.00'],
    [-2_500_000, '-2.50'],
  ])('formats %d', (micro, text) => {
    expect(formatUsd(micro)).toBe(text);
  });

  it('refuses non-integers as a programming error', () => {
    expect(refusal(() => formatUsd(1.5)).code).toBe('internal');
  });

  it('round-trips through parseUsd', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_MICRO }), (micro) => {
        expect(parseUsd(formatUsd(micro), 'x')).toBe(micro);
        expect(parseUsd(`$${formatUsdFixed(micro, 6)}`, 'x')).toBe(micro);
      }),
    );
  });
});

describe('formatUsdFixed', () => {
  it.each([
    [1_234_567, 2, '1.23'],
    [1_235_000, 2, '1.24'],
    [1_995_000, 2, '2.00'],
    [4_999, 2, '0.00'],
    [5_000, 2, '0.01'],
    [12_500_000, 0, '13'],
    [125, 6, '0.000125'],
    [-1_235_000, 2, '-1.24'],
    [-4_000, 2, '0.00'],
  ])('formats %d with %d digits', (micro, digits, text) => {
    expect(formatUsdFixed(micro, digits)).toBe(text);
  });
});

describe('usdToMicro', () => {
  it.each([
    [500, 500_000_000],
    [0.1, 100_000],
    [0.3, 300_000],
    [12.345678, 12_345_678],
    [1.1e-7, 0],
    [5e-7, 1],
    [0.0000015, 2],
    [1e9, MAX_MICRO],
  ])('converts %d', (usd, micro) => {
    expect(usdToMicro(usd)).toBe(micro);
  });

  it.each([
    [-1, 'must not be negative'],
    [Number.NaN, 'finite'],
    [Number.POSITIVE_INFINITY, 'finite'],
    [1e9 + 1, 'at most'],
  ])('refuses %d', (usd, message) => {
    expect(refusal(() => usdToMicro(usd, 'cap')).message).toContain(message);
  });

  it('agrees with parseUsd on formatted amounts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_MICRO }), (micro) => {
        expect(usdToMicro(Number(formatUsd(micro)))).toBe(micro);
      }),
    );
  });
});
