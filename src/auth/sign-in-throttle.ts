// Failed sign-ins counted per account and per client address over a sliding minute. The account key is
// the identifier as typed (lower-cased), whether or not such a person exists, so a throttled unknown name
// and a throttled real one answer alike. Memory is bounded: the oldest entries go first.

export interface ThrottleSettings {
  /** Failures allowed in a window; the next attempt is refused. */
  readonly maxFailures: number;
  readonly windowMs: number;
  /** Entries kept at most (accounts and addresses together). */
  readonly maxEntries: number;
}

export const SIGN_IN_THROTTLE: ThrottleSettings = { maxFailures: 10, windowMs: 60_000, maxEntries: 20_000 };

export function createSignInThrottle(settings: ThrottleSettings = SIGN_IN_THROTTLE) {
  const failures = new Map<string, number[]>();

  function recent(key: string, now: number): number[] {
    const times = failures.get(key);
    if (!times) return [];
    const cut = now - settings.windowMs;
    while (times.length > 0 && (times[0] ?? 0) <= cut) times.shift();
    if (times.length === 0) failures.delete(key);
    return times;
  }

  /** Seconds until the first of `keys` may try again, or 0 when none is throttled. */
  function retryAfter(keys: readonly string[], now: number): number {
    let wait = 0;
    for (const key of keys) {
      const times = recent(key, now);
      if (times.length >= settings.maxFailures) {
        const oldest = times[times.length - settings.maxFailures] ?? now;
        wait = Math.max(wait, Math.ceil((oldest + settings.windowMs - now) / 1000));
      }
    }
    return wait;
  }

  function fail(keys: readonly string[], now: number): void {
    for (const key of keys) {
      const times = recent(key, now);
      times.push(now);
      // Only the last maxFailures matter for the decision.
      if (times.length > settings.maxFailures) times.shift();
      failures.delete(key);
      failures.set(key, times);
    }
    while (failures.size > settings.maxEntries) {
      const oldest = failures.keys().next().value;
      if (oldest === undefined) break;
      failures.delete(oldest);
    }
  }

  /** A successful sign-in clears the account's count (the address keeps its own). */
  function succeed(accountKey: string): void {
    failures.delete(accountKey);
  }

  return { retryAfter, fail, succeed };
}

export type SignInThrottle = ReturnType<typeof createSignInThrottle>;

export const accountKey = (identifier: string): string =>
  `account:${identifier.trim().toLowerCase().slice(0, 200)}`;
export const addressKey = (ip: string): string => `ip:${ip}`;
