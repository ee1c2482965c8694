// What the gateway asks of a rate limiter, whichever keeps the counts: in process (limiter.ts, one
// instance) or in Redis (redis-limiter.ts, shared by every instance). The headers and refusals are
// the same either way; only where the windows live differs.

export interface RateLimits {
  readonly rpm: number | null;
  readonly inputTpm: number | null;
  readonly outputTpm: number | null;
  readonly concurrency: number | null;
}

export type LimitKind = 'requests' | 'input-tokens' | 'output-tokens' | 'concurrency';

/** `anthropic-ratelimit-*` headers: a fresh object per call, owned (and extended) by the caller. */
export interface RateHeaders {
  [name: string]: string;
}

export interface RateRefusal {
  ok: false;
  /** `unavailable`: the shared store cannot be reached, so no limit can be checked (fail closed). */
  kind: LimitKind | 'unavailable';
  retryAfterS: number;
  headers: RateHeaders;
}

/** An admitted request's hold on the limits; each implementation keeps its own fields. */
export interface Ticket {
  done: boolean;
}

export type AdmitResult<T extends Ticket = Ticket> =
  | { ok: true; ticket: T; headers: RateHeaders }
  | RateRefusal;

/**
 * Admission in two steps, so the cheap refusals come before any work on the body: `admitRequest`
 * (concurrency and requests per minute) takes a request slot and a ticket; `admitTokens` (after the
 * body is bounded) charges the token lanes; `finish` releases the slot and corrects the token charges
 * to the actual figures — exactly once per ticket (a second call does nothing) and never throwing.
 * A result is a promise only when the limiter had to ask a shared store.
 */
export interface RateLimiter {
  admitRequest(keyId: string, limits: RateLimits, now: number): AdmitResult | Promise<AdmitResult>;
  admitTokens(
    ticket: Ticket,
    limits: RateLimits,
    now: number,
    inputEstimate: number,
    outputReserve: number,
  ): RateRefusal | null | Promise<RateRefusal | null>;
  finish(ticket: Ticket, now: number, actualInput: number, actualOutput: number): void;
  /** Drops state of keys idle for over a minute (in process); a shared store expires its own. */
  forgetIdle(now: number): number;
}

/** The refusal when a shared store cannot be asked: fail closed, the caller may retry shortly. */
export const UNAVAILABLE: RateRefusal = Object.freeze({
  ok: false,
  kind: 'unavailable',
  retryAfterS: 1,
  headers: Object.freeze({}) as RateHeaders,
}) as RateRefusal;

/** RFC 3339 at whole seconds; remembered per second since every admitted request asks. */
export function resetTime(at: number): string {
  const second = Math.ceil(at / 1000);
  if (second !== lastResetSecond) {
    lastResetSecond = second;
    lastResetText = new Date(second * 1000).toISOString().replace('.000Z', 'Z');
  }
  return lastResetText;
}

let lastResetSecond = -1;
let lastResetText = '';

export function requestHeaders(limit: number, remaining: number, resetAt: number): RateHeaders {
  return {
    'anthropic-ratelimit-requests-limit': String(limit),
    'anthropic-ratelimit-requests-remaining': String(Math.max(0, remaining)),
    'anthropic-ratelimit-requests-reset': resetTime(resetAt),
  };
}

export function tokenHeaders(
  kind: 'input' | 'output',
  limit: number,
  used: number,
  resetAt: number,
): RateHeaders {
  return {
    [`anthropic-ratelimit-${kind}-tokens-limit`]: String(limit),
    [`anthropic-ratelimit-${kind}-tokens-remaining`]: String(Math.max(0, Math.floor(limit - used))),
    [`anthropic-ratelimit-${kind}-tokens-reset`]: resetTime(resetAt),
  };
}
