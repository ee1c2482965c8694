// When to retry an Admin API call and how long to wait (pure: the caller sleeps).

export interface RetryPolicy {
  /** Attempts in all, the first included (default 4). */
  readonly maxAttempts: number;
  /** The longest the waits of one call may add up to (default 30 s). */
  readonly maxTotalWaitMs: number;
  /** First backoff when the server names no wait; doubled each attempt (default 500 ms). */
  readonly baseDelayMs: number;
  /** The longest single backoff (default 8 s). */
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 4,
  maxTotalWaitMs: 30_000,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
};

/** 429 (rate limited) and 5xx (529 overloaded included) are worth another try; nothing else is. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** `retry-after` in whole or decimal seconds; null when absent or not a number of seconds. */
export function parseRetryAfter(header: string | undefined): number | null {
  if (header === undefined || !/^\d+(\.\d+)?$/.test(header.trim())) return null;
  return Math.round(Number(header.trim()) * 1000);
}

/**
 * The wait before attempt `attempt + 1` (attempt counts from 1), or null to give up: out of attempts,
 * or the wait would take the total past the bound.
 */
export function nextDelayMs(
  policy: RetryPolicy,
  attempt: number,
  waitedMs: number,
  retryAfterMs: number | null,
): number | null {
  if (attempt >= policy.maxAttempts) return null;
  const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const delay = retryAfterMs ?? backoff;
  if (waitedMs + delay > policy.maxTotalWaitMs) return null;
  return delay;
}
