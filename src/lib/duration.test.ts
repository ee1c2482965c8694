import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatDuration, MAX_DURATION_MS, parseDuration } from './duration.js';
import { AppError } from './errors.js';

const DAY = 86_400_000;

describe('parseDuration', () => {
  it.each([
    ['90d', 90 * DAY],
    ['24h', 24 * 3_600_000],
    ['30m', 30 * 60_000],
    ['45s', 45_000],
    ['2w', 14 * DAY],
    ['500ms', 500],
    [' 7D ', 7 * DAY],
    ['3650d', 3650 * DAY],
  ])('parses %j', (text, ms) => {
    expect(parseDuration(text, 'max age')).toBe(ms);
  });

  it.each([
    ['0d', 'max age must be greater than zero'],
    ['-5d', 'max age must not be negative'],
    ['', 'max age must not be empty'],
    ['abc', 'whole number with a unit'],
    ['90', 'whole number with a unit'],
    ['1.5h', 'whole number with a unit'],
    ['1d2h', 'whole number with a unit'],
    ['11y', 'whole number with a unit'],
    ['3700d', 'at most 10 years'],
    ['99999999999999999999w', 'at most 10 years'],
  ])('refuses %j', (text, message) => {
    let caught: unknown;
    try {
      parseDuration(text, 'max age');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AppError);
    expect((caught as AppError).code).toBe('invalid_input');
    expect((caught as AppError).message).toContain(message);
  });
});

describe('formatDuration', () => {
  it.each([
    [90 * DAY, '90d'],
    [14 * DAY, '2w'],
    [3_600_000, '1h'],
    [5_400_000, '90m'],
    [DAY + 1, '86400001ms'],
    [-2 * DAY, '-2d'],
    [0, '0s'],
    [45_000, '45s'],
  ])('formats %d', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips single-unit durations', () => {
    const units = ['w', 'd', 'h', 'm', 's'] as const;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.constantFrom(...units), (n, unit) => {
        const ms = parseDuration(`${n}${unit}`, 'x');
        expect(ms).toBeLessThanOrEqual(MAX_DURATION_MS);
        expect(parseDuration(formatDuration(ms), 'x')).toBe(ms);
      }),
    );
  });
});
