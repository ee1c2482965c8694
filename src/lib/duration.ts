// Durations as integer milliseconds; text form is a number and one unit ("90d", "24h", "2w").

import { AppError } from './errors.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

/** Upper bound of any duration: ten years, counting the leap days they can contain. */
export const MAX_DURATION_MS = (10 * 365 + 3) * DAY;

// Largest first, so formatting picks the coarsest exact unit.
const FORMAT_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['w', WEEK],
  ['d', DAY],
  ['h', HOUR],
  ['m', MINUTE],
  ['s', SECOND],
  ['ms', 1],
];

const UNITS: Readonly<Record<string, number>> = Object.fromEntries(FORMAT_UNITS);

function refuse(message: string): AppError {
  return new AppError('invalid_input', message);
}

/** Parses "90d", "24h", "30m", "45s", "2w" (or "500ms") into milliseconds. */
export function parseDuration(text: string, what: string): number {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === '') throw refuse(`${what} must not be empty`);
  if (trimmed.startsWith('-')) throw refuse(`${what} must not be negative`);
  const match = /^(\d+)\s*(ms|[wdhms])$/.exec(trimmed);
  const amount = match?.[1];
  const unit = match?.[2] === undefined ? undefined : UNITS[match[2]];
  if (amount === undefined || unit === undefined) {
    throw refuse(`${what} must be a whole number with a unit w, d, h, m or s, e.g. 90d or 24h`);
  }
  // Long digit strings would lose precision in Number(); anything that long is over the cap anyway.
  const ms = amount.length > 15 ? Number.POSITIVE_INFINITY : Number(amount) * unit;
  if (ms === 0) throw refuse(`${what} must be greater than zero`);
  if (ms > MAX_DURATION_MS) throw refuse(`${what} must be at most 10 years`);
  return ms;
}

/** Formats milliseconds in the coarsest unit that is exact ("90d", "2w", "90m", "1500ms"); parseDuration reads it back. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const rounded = Math.round(ms);
  if (rounded === 0) return '0s';
  for (const [name, size] of FORMAT_UNITS) {
    if (rounded % size === 0) return `${rounded / size}${name}`;
  }
  return `${rounded}ms`;
}
