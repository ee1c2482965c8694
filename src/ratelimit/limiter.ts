// Per-key rate limits, in process: requests in any rolling 60 s (exact up to EXACT_RPM_MAX), input and
// output tokens per minute (5-second slices over a rolling 60 s), and requests in flight.
//
// Admission is two steps, so the cheap refusals come before any work on the body: `admitRequest`
// (concurrency and requests per minute: nothing about the body is needed) takes a request slot and a
// ticket; `admitTokens` (after the body is parsed and bounded) charges the token lanes. A request
// refused after its slot was taken still counts as a request (a flood of bad requests gets no more
// work than the limit allows); `finish` releases its concurrency slot.
import {
  type AdmitResult,
  type Ticket as BaseTicket,
  type RateHeaders,
  type RateLimits,
  type RateRefusal,
  requestHeaders,
  tokenHeaders,
} from './rate-limiter.js';
import { INPUT, OUTPUT, REQUESTS, SLICE_MS, SLICES, SlicedMinutes, WINDOW_MS } from './sliced-minutes.js';

export type {
  AdmitResult,
  LimitKind,
  RateHeaders,
  RateLimiter,
  RateLimits,
  RateRefusal,
} from './rate-limiter.js';

export interface Ticket extends BaseTicket {
  readonly state: KeyState;
  /** Whether the token lanes were charged (their limit applied): set by `admitTokens`. */
  input: boolean;
  output: boolean;
  inputCharged: number;
  outputCharged: number;
}

/**
 * Requests in any rolling 60 s. Up to EXACT_RPM_MAX the admission times of the last N requests are
 * kept in a ring (exact: the (N+1)th request waits until the oldest of the last N is 60 s old).
 * Above that, memory would grow with N (8 bytes per request), so the requests lane of the key's
 * sliced minute is used — conservative: never more than N in any 60 s; a slot frees at most 5 s late.
 */
export const EXACT_RPM_MAX = 1_000;

class ExactWindow {
  private readonly times: Float64Array;
  private next = 0;

  constructor(private readonly limit: number) {
    this.times = new Float64Array(limit).fill(Number.NEGATIVE_INFINITY);
  }

  /** Requests that may still be admitted now (0 when full). */
  free(now: number): number {
    // The ring holds admissions oldest-first starting at `next`; find the first one inside the window.
    const n = this.limit;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (now - (this.times[(this.next + mid) % n] ?? 0) >= WINDOW_MS) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** When the oldest admission leaves the window (the next slot frees). */
  retryAt(): number {
    return (this.times[this.next] ?? Number.NEGATIVE_INFINITY) + WINDOW_MS;
  }

  admit(now: number): void {
    this.times[this.next] = now;
    this.next = (this.next + 1) % this.limit;
  }
}

interface KeyState {
  rpm: number | null;
  /** The last `rpm` admission times, when rpm ≤ EXACT_RPM_MAX. */
  exact: ExactWindow | null;
  /**
   * Requests above EXACT_RPM_MAX and tokens: an offset into the sliced minutes, or NO_MINUTE until a
   * limit on them applies.
   */
  minute: number;
  inFlight: number;
  /** The 5 s slice of the last admission or finish (an idle state is forgotten, see forgetIdle). */
  lastSlice: number;
}

const NO_MINUTE = -1;

/** The in-process limiter (one instance; no shared store). */
export function createRateLimiter() {
  const states = new Map<string, KeyState>();
  const minutes = new SlicedMinutes();

  function stateOf(keyId: string, rpm: number | null): KeyState {
    let state = states.get(keyId);
    if (!state) {
      state = { rpm: null, exact: null, minute: NO_MINUTE, inFlight: 0, lastSlice: 0 };
      states.set(keyId, state);
    }
    if (state.rpm !== rpm) {
      // A changed limit starts a fresh window (history under the old policy is moot).
      state.rpm = rpm;
      state.exact = rpm !== null && rpm <= EXACT_RPM_MAX ? new ExactWindow(rpm) : null;
      if (state.minute !== NO_MINUTE) minutes.clear(state.minute, REQUESTS);
    }
    return state;
  }

  function minuteOf(state: KeyState): number {
    if (state.minute === NO_MINUTE) state.minute = minutes.alloc();
    return state.minute;
  }

  /** Requests still admissible now under `rpm` (the hot path: no retry time, no object). */
  function requestsFree(state: KeyState, rpm: number, now: number): number {
    if (state.exact) return state.exact.free(now);
    return Math.max(0, rpm - minutes.used(minuteOf(state), REQUESTS, now));
  }

  /** When a request slot frees under `rpm` (only asked when the window is full). */
  function requestsRetryAt(state: KeyState, rpm: number, now: number): number {
    if (state.exact) return state.exact.retryAt();
    return now + minutes.secondsUntil(minuteOf(state), REQUESTS, now, rpm, 1) * 1000;
  }

  /**
   * Takes a request slot (requests per minute) and a concurrency slot, or says which limit is reached
   * and when to retry. Needs nothing of the body: it runs before the body is parsed. The ticket must
   * be `finish`ed exactly once, whatever happens next.
   */
  function admitRequest(keyId: string, limits: RateLimits, now: number): AdmitResult<Ticket> {
    const state = stateOf(keyId, limits.rpm);
    state.lastSlice = Math.floor(now / SLICE_MS);
    if (limits.concurrency !== null && state.inFlight >= limits.concurrency) {
      return { ok: false, kind: 'concurrency', retryAfterS: 1, headers: {} };
    }
    let requestsRemaining: number | null = null;
    if (limits.rpm !== null) {
      const free = requestsFree(state, limits.rpm, now);
      if (free <= 0) {
        const retryAt = requestsRetryAt(state, limits.rpm, now);
        return {
          ok: false,
          kind: 'requests',
          retryAfterS: Math.max(1, Math.ceil((retryAt - now) / 1000)),
          headers: requestHeaders(limits.rpm, 0, retryAt),
        };
      }
      requestsRemaining = free - 1;
      if (state.exact) state.exact.admit(now);
      else minutes.add(minuteOf(state), REQUESTS, now, 1);
    }
    state.inFlight++;
    const headers: RateHeaders =
      limits.rpm !== null && requestsRemaining !== null
        ? requestHeaders(limits.rpm, requestsRemaining, now + WINDOW_MS)
        : {};
    return {
      ok: true,
      ticket: { state, input: false, output: false, inputCharged: 0, outputCharged: 0, done: false },
      headers,
    };
  }

  /**
   * Charges an admitted request's tokens: `inputEstimate` and `outputReserve` (max_tokens), corrected
   * by `finish`. Null when within the limits; otherwise the refusal (the ticket stays open: the caller
   * finishes it, and the request keeps its place in the requests-per-minute count).
   */
  function admitTokens(
    ticket: Ticket,
    limits: RateLimits,
    now: number,
    inputEstimate: number,
    outputReserve: number,
  ): RateRefusal | null {
    if (limits.inputTpm === null && limits.outputTpm === null) return null;
    const state = ticket.state;
    const minute = minuteOf(state);
    if (limits.inputTpm !== null) {
      const used = minutes.used(minute, INPUT, now);
      // A single request larger than the whole limit may pass when the window is empty.
      if (used > 0 && used + inputEstimate > limits.inputTpm) {
        const retry = minutes.secondsUntil(minute, INPUT, now, limits.inputTpm, inputEstimate);
        return {
          ok: false,
          kind: 'input-tokens',
          retryAfterS: retry,
          headers: tokenHeaders('input', limits.inputTpm, used, now + retry * 1000),
        };
      }
    }
    if (limits.outputTpm !== null) {
      const used = minutes.used(minute, OUTPUT, now);
      if (used > 0 && used + outputReserve > limits.outputTpm) {
        const retry = minutes.secondsUntil(minute, OUTPUT, now, limits.outputTpm, outputReserve);
        return {
          ok: false,
          kind: 'output-tokens',
          retryAfterS: retry,
          headers: tokenHeaders('output', limits.outputTpm, used, now + retry * 1000),
        };
      }
    }
    if (limits.inputTpm !== null) {
      minutes.add(minute, INPUT, now, inputEstimate);
      ticket.input = true;
      ticket.inputCharged = inputEstimate;
    }
    if (limits.outputTpm !== null) {
      minutes.add(minute, OUTPUT, now, outputReserve);
      ticket.output = true;
      ticket.outputCharged = outputReserve;
    }
    return null;
  }

  /**
   * Both steps at once (for requests whose tokens are known without reading a body). A token refusal
   * releases the concurrency slot; the request still counts against requests per minute.
   */
  function admit(
    keyId: string,
    limits: RateLimits,
    now: number,
    inputEstimate: number,
    outputReserve: number,
  ): AdmitResult<Ticket> {
    const admitted = admitRequest(keyId, limits, now);
    if (!admitted.ok) return admitted;
    const refused = admitTokens(admitted.ticket, limits, now, inputEstimate, outputReserve);
    if (refused === null) return admitted;
    finish(admitted.ticket, now, 0, 0);
    return refused;
  }

  /** Ends a request: frees its concurrency slot and replaces the token charges by the actual figures. */
  function finish(ticket: Ticket, now: number, actualInput: number, actualOutput: number): void {
    if (ticket.done) return;
    ticket.done = true;
    const state = ticket.state;
    state.inFlight--;
    state.lastSlice = Math.floor(now / SLICE_MS);
    // A forgotten key's ticket cannot be open (forgetIdle keeps keys with requests in flight).
    if (ticket.input) minutes.add(state.minute, INPUT, now, actualInput - ticket.inputCharged);
    if (ticket.output) minutes.add(state.minute, OUTPUT, now, actualOutput - ticket.outputCharged);
  }

  /**
   * Forgets keys with nothing in flight and no admission or finish for over a minute: every window
   * they hold has emptied, so a fresh state is the same. Memory then follows the keys in use, not every
   * key ever seen. Returns how many were forgotten.
   */
  function forgetIdle(now: number): number {
    const slice = Math.floor(now / SLICE_MS);
    let forgotten = 0;
    for (const [keyId, state] of states) {
      if (state.inFlight === 0 && slice - state.lastSlice > SLICES) {
        states.delete(keyId);
        if (state.minute !== NO_MINUTE) minutes.free(state.minute);
        forgotten++;
      }
    }
    return forgotten;
  }

  return { admitRequest, admitTokens, admit, finish, forgetIdle, size: () => states.size };
}

export type MemoryRateLimiter = ReturnType<typeof createRateLimiter>;
