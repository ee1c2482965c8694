// Money is integer micro-USD (1 USD = 1,000,000 micro) held in a safe-integer `number`.
// Conversions from text never go through floating point: the decimal string is split on the dot.

import { AppError } from './errors.js';

export const MICRO_PER_USD = 1_000_000;
/** Largest amount Tollgate accepts anywhere: 1,000,000,000 USD (1e15 micro, well inside 2^53). */
export const MAX_USD = 1_000_000_000;
export const MAX_MICRO = MAX_USD * MICRO_PER_USD;

const DECIMALS = 6;
const PLAIN_DECIMAL = /^(\d*)(?:\.(\d*))?$/;

function refuse(message: string): AppError {
  return new AppError('invalid_input', message);
}

/** Converts digit strings (whole part, fractional part of at most 6 digits) to micro-USD. */
function digitsToMicro(whole: string, frac: string, what: string): number {
  const wholeDigits = whole.replace(/^0+/, '');
  // More than 10 whole digits is above the cap; checked before Number() so no precision is lost.
  if (wholeDigits.length > String(MAX_USD).length) throw refuse(`${what} must be at most ${MAX_USD} USD`);
  const micro = Number(wholeDigits || '0') * MICRO_PER_USD + Number(frac.padEnd(DECIMALS, '0'));
  if (micro > MAX_MICRO) throw refuse(`${what} must be at most ${MAX_USD} USD`);
  return micro;
}

/** Parses a user-typed USD amount ("100", "0.5", "$12.345678") into micro-USD. */
export function parseUsd(text: string, what: string): number {
  const trimmed = text.trim();
  if (trimmed === '') throw refuse(`${what} must not be empty`);
  if (trimmed.startsWith('-') || trimmed.startsWith('$-')) throw refuse(`${what} must not be negative`);
  const unsigned = trimmed.startsWith('$') ? trimmed.slice(1) : trimmed;
  if (/^\+?(?:infinity|inf|nan)$/i.test(unsigned)) throw refuse(`${what} must be a finite amount in USD`);
  const match = PLAIN_DECIMAL.exec(unsigned);
  if (!match) {
    if (/^[\d.]+e[+-]?\d+$/i.test(unsigned)) {
      throw refuse(`${what} must be a plain decimal number (no exponent), e.g. 12.50`);
    }
    throw refuse(`${what} must be an amount in USD such as 12.50`);
  }
  const whole = match[1] ?? '';
  const frac = match[2] ?? '';
  if (whole === '' && frac === '') throw refuse(`${what} must be an amount in USD such as 12.50`);
  if (match[2] !== undefined && frac === '') throw refuse(`${what} must have digits after the decimal point`);
  if (frac.length > DECIMALS) {
    throw refuse(`${what} has more than ${DECIMALS} decimal places (the smallest unit is 0.000001 USD)`);
  }
  return digitsToMicro(whole, frac, what);
}

function assertMicro(micro: number): void {
  if (!Number.isSafeInteger(micro)) {
    throw new AppError('internal', 'money amount is not an integer number of micro-USD');
  }
}

function split(micro: number): { sign: string; whole: string; frac: string } {
  assertMicro(micro);
  const abs = Math.abs(micro);
  const whole = Math.floor(abs / MICRO_PER_USD);
  const frac = abs - whole * MICRO_PER_USD;
  return { sign: micro < 0 ? '-' : '', whole: String(whole), frac: String(frac).padStart(DECIMALS, '0') };
}

/** Formats micro-USD as a decimal USD string: up to 6 decimals, at least 2 ("12.50", "0.000125"). */
export function formatUsd(micro: number): string {
  const { sign, whole, frac } = split(micro);
  const trimmed = frac.replace(/0+$/, '').padEnd(2, '0');
  return `${sign}${whole}.${trimmed}`;
}

/** Formats micro-USD with exactly `digits` decimals (0–6), rounding half away from zero. */
export function formatUsdFixed(micro: number, digits: number): string {
  assertMicro(micro);
  if (!Number.isInteger(digits) || digits < 0 || digits > DECIMALS) {
    throw new AppError('internal', `formatUsdFixed: digits must be an integer from 0 to ${DECIMALS}`);
  }
  const unit = 10 ** (DECIMALS - digits);
  const abs = Math.abs(micro);
  let units = Math.floor(abs / unit);
  if (2 * (abs - units * unit) >= unit) units += 1;
  const scaled = String(units).padStart(digits + 1, '0');
  const sign = micro < 0 && units > 0 ? '-' : '';
  if (digits === 0) return `${sign}${scaled}`;
  return `${sign}${scaled.slice(0, -digits)}.${scaled.slice(-digits)}`;
}

/**
 * Converts a USD amount given as a number (from a config file) to micro-USD, rounding half up at the
 * sixth decimal. Goes through the number's shortest decimal string, so 0.1 becomes exactly 100000.
 */
export function usdToMicro(n: number, what = 'amount'): number {
  if (!Number.isFinite(n)) throw refuse(`${what} must be a finite amount in USD`);
  if (n < 0) throw refuse(`${what} must not be negative`);
  if (n > MAX_USD) throw refuse(`${what} must be at most ${MAX_USD} USD`);
  // String(n) is the shortest round-trip decimal, possibly in exponent form ("1.5e-7") for tiny values.
  const match = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(n));
  if (!match) throw refuse(`${what} must be an amount in USD`);
  const digits = (match[1] ?? '') + (match[2] ?? '');
  const point = (match[1] ?? '').length + Number(match[3] ?? '0');
  const padded = point < 0 ? '0'.repeat(-point) + digits : digits.padEnd(point, '0');
  const at = Math.max(point, 0);
  const whole = padded.slice(0, at);
  const rest = padded.slice(at);
  const micro = digitsToMicro(whole, rest.slice(0, DECIMALS), what);
  const roundUp = (rest[DECIMALS] ?? '0') >= '5';
  return roundUp ? micro + 1 : micro;
}
