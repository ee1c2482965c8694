import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY, isRetryableStatus, nextDelayMs, parseRetryAfter } from './retry.js';

describe('retry policy', () => {
  it('retries 429 and 5xx, not 4xx or success', () => {
    expect([429, 500, 502, 529].map(isRetryableStatus)).toEqual([true, true, true, true]);
    expect([200, 400, 401, 403, 404, 409].map(isRetryableStatus)).toEqual([
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
  });

  it('reads retry-after seconds and ignores what is not a number of seconds', () => {
    expect(parseRetryAfter('1')).toBe(1000);
    expect(parseRetryAfter('2.5')).toBe(2500);
    expect(parseRetryAfter(undefined)).toBeNull();
    expect(parseRetryAfter('Wed, 21 Oct 2026 07:28:00 GMT')).toBeNull();
    expect(parseRetryAfter('-1')).toBeNull();
  });

  it('honours retry-after, else backs off exponentially up to the cap', () => {
    expect(nextDelayMs(DEFAULT_RETRY, 1, 0, 3000)).toBe(3000);
    expect([1, 2, 3].map((a) => nextDelayMs(DEFAULT_RETRY, a, 0, null))).toEqual([500, 1000, 2000]);
    const long = { ...DEFAULT_RETRY, maxAttempts: 10 };
    expect(nextDelayMs(long, 8, 0, null)).toBe(8000);
  });

  it('gives up after the last attempt and when the total wait would pass its bound', () => {
    expect(nextDelayMs(DEFAULT_RETRY, 3, 0, null)).toBe(2000);
    expect(nextDelayMs(DEFAULT_RETRY, 4, 0, null)).toBeNull();
    expect(nextDelayMs(DEFAULT_RETRY, 1, 0, 29_000)).toBe(29_000);
    expect(nextDelayMs(DEFAULT_RETRY, 1, 0, 31_000)).toBeNull();
    expect(nextDelayMs(DEFAULT_RETRY, 2, 29_000, 1001)).toBeNull();
  });
});
