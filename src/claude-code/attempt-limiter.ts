// Fixed-window attempt counting per client (enrollment code guesses), in a bounded map. Pure: `now` is a
// parameter. With 80-bit codes guessing is hopeless anyway; the limit keeps the endpoint cheap to serve.

export interface AttemptLimiterOptions {
  /** Attempts allowed per window and client. */
  readonly limit: number;
  readonly windowMs: number;
  /** Most clients remembered; the oldest windows are forgotten first. */
  readonly maxClients: number;
}

export type AttemptVerdict =
  | { allowed: true }
  /** `over`: how many attempts past the limit this one is (1 for the first refused in the window). */
  | { allowed: false; retryAfterMs: number; over: number };

export const DEFAULT_ATTEMPT_LIMITS: AttemptLimiterOptions = {
  limit: 10,
  windowMs: 60_000,
  maxClients: 10_000,
};

export function createAttemptLimiter(options: AttemptLimiterOptions = DEFAULT_ATTEMPT_LIMITS) {
  // Insertion order = window start order, because a client is re-inserted when its window restarts.
  const windows = new Map<string, { start: number; count: number }>();

  function evict(now: number): void {
    for (const [client, window] of windows) {
      if (windows.size < options.maxClients && now - window.start < options.windowMs) return;
      windows.delete(client);
    }
  }

  /** Counts one attempt of `client` and says whether it may proceed. */
  function hit(client: string, now: number): AttemptVerdict {
    let window = windows.get(client);
    if (!window || now - window.start >= options.windowMs) {
      windows.delete(client);
      evict(now);
      window = { start: now, count: 0 };
      windows.set(client, window);
    }
    window.count++;
    if (window.count <= options.limit) return { allowed: true };
    return {
      allowed: false,
      retryAfterMs: window.start + options.windowMs - now,
      over: window.count - options.limit,
    };
  }

  return { hit, size: () => windows.size };
}

export type AttemptLimiter = ReturnType<typeof createAttemptLimiter>;
