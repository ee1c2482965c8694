// Per-key rate limits, in process: requests in any rolling 60 s (exact), input and output tokens per
// minute (1-second buckets over a rolling 60 s), and requests in flight.
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

export type AdmitResult =
  | { ok: true; ticket: Ticket; headers: RateHeaders }
  | { ok: false; kind: LimitKind; retryAfterS: number; headers: RateHeaders };

export interface Ticket {
  readonly state: KeyState;
  /** Whether the token lanes were charged at admission (their limit applied). */
  readonly input: boolean;
  readonly output: boolean;
  inputCharged: number;
  outputCharged: number;
  done: boolean;
}

const WINDOW_MS = 60_000;
const SLICE_MS = 5_000;
/** 12 slices make a minute; one more holds the slice straddling the window's start. */
const SLICES = WINDOW_MS / SLICE_MS + 1;

/** The lanes of a key's sliced minute. */
const REQUESTS = 1;
const INPUT = 2;
const OUTPUT = 3;
const LANES = 3;

/**
 * A key's rolling minute in 5 s slices: requests (above EXACT_RPM_MAX), input and output tokens, in
 * one plain array — [0, SLICES) slice numbers, then SLICES amounts per lane (~220 bytes a key; one
 * array instead of one per limit). Slice numbers and token counts are small integers, so V8 keeps the
 * array as tagged small integers inside its heap. The slice straddling the window's start counts in
 * full: the sum never under-counts the last 60 s, so a limit is never exceeded; a freed amount returns
 * at most 5 s late.
 */
class SlicedMinute {
  private readonly data: number[] = new Array<number>(SLICES * (LANES + 1)).fill(-1);

  add(lane: number, now: number, amount: number): void {
    const slice = Math.floor(now / SLICE_MS);
    const i = slice % SLICES;
    if (this.data[i] !== slice) {
      // The slot held a slice that left the window: every lane starts this one from zero.
      this.data[i] = slice;
      for (let l = 1; l <= LANES; l++) this.data[l * SLICES + i] = 0;
    }
    const at = lane * SLICES + i;
    this.data[at] = (this.data[at] ?? 0) + amount;
  }

  used(lane: number, now: number): number {
    const slice = Math.floor(now / SLICE_MS);
    const base = lane * SLICES;
    let total = 0;
    for (let i = 0; i < SLICES; i++) {
      const stamp = this.data[i] ?? -1;
      if (stamp >= 0 && slice - stamp < SLICES) total += this.data[base + i] ?? 0;
    }
    return total;
  }

  /** Seconds until `needed` more fits under `limit`, as the oldest slices leave the window. */
  secondsUntil(lane: number, now: number, limit: number, needed: number): number {
    const slice = Math.floor(now / SLICE_MS);
    let used = this.used(lane, now);
    if (used + needed <= limit) return 0;
    for (let age = SLICES - 1; age >= 0; age--) {
      const stamp = slice - age;
      const i = ((stamp % SLICES) + SLICES) % SLICES;
      if (this.data[i] === stamp) used -= this.data[lane * SLICES + i] ?? 0;
      if (used + needed <= limit) return Math.max(1, Math.ceil(((stamp + SLICES) * SLICE_MS - now) / 1000));
    }
    return WINDOW_MS / 1000;
  }

  /** Forgets one lane's history (a changed limit starts afresh). */
  clear(lane: number): void {
    for (let i = 0; i < SLICES; i++) this.data[lane * SLICES + i] = 0;
  }
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
  /** Requests above EXACT_RPM_MAX and tokens; created once a limit on them applies. */
  minute: SlicedMinute | null;
  inFlight: number;
  /** The 5 s slice of the last admission or finish (an idle state is forgotten, see forgetIdle). */
  lastSlice: number;
}

export function createRateLimiter() {
  const states = new Map<string, KeyState>();

  function stateOf(keyId: string, rpm: number | null): KeyState {
    let state = states.get(keyId);
    if (!state) {
      state = { rpm: null, exact: null, minute: null, inFlight: 0, lastSlice: 0 };
      states.set(keyId, state);
    }
    if (state.rpm !== rpm) {
      // A changed limit starts a fresh window (history under the old policy is moot).
      state.rpm = rpm;
      state.exact = rpm !== null && rpm <= EXACT_RPM_MAX ? new ExactWindow(rpm) : null;
      state.minute?.clear(REQUESTS);
    }
    return state;
  }

  function minuteOf(state: KeyState): SlicedMinute {
    if (!state.minute) state.minute = new SlicedMinute();
    return state.minute;
  }

  /** Requests still admissible now under `rpm` (the hot path: no retry time, no object). */
  function requestsFree(state: KeyState, rpm: number, now: number): number {
    if (state.exact) return state.exact.free(now);
    return Math.max(0, rpm - minuteOf(state).used(REQUESTS, now));
  }

  /** When a request slot frees under `rpm` (only asked when the window is full). */
  function requestsRetryAt(state: KeyState, rpm: number, now: number): number {
    if (state.exact) return state.exact.retryAt();
    return now + minuteOf(state).secondsUntil(REQUESTS, now, rpm, 1) * 1000;
  }

  /**
   * Admits a request or says which limit it hit and when to retry. `inputEstimate` and
   * `outputReserve` (max_tokens) are charged now and corrected by `finish`.
   */
  function admit(
    keyId: string,
    limits: RateLimits,
    now: number,
    inputEstimate: number,
    outputReserve: number,
  ): AdmitResult {
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
    }
    const minute = limits.inputTpm !== null || limits.outputTpm !== null ? minuteOf(state) : null;
    if (minute && limits.inputTpm !== null) {
      const used = minute.used(INPUT, now);
      // A single request larger than the whole limit may pass when the window is empty.
      if (used > 0 && used + inputEstimate > limits.inputTpm) {
        const retry = minute.secondsUntil(INPUT, now, limits.inputTpm, inputEstimate);
        return {
          ok: false,
          kind: 'input-tokens',
          retryAfterS: retry,
          headers: tokenHeaders('input', limits.inputTpm, used, now + retry * 1000),
        };
      }
    }
    if (minute && limits.outputTpm !== null) {
      const used = minute.used(OUTPUT, now);
      if (used > 0 && used + outputReserve > limits.outputTpm) {
        const retry = minute.secondsUntil(OUTPUT, now, limits.outputTpm, outputReserve);
        return {
          ok: false,
          kind: 'output-tokens',
          retryAfterS: retry,
          headers: tokenHeaders('output', limits.outputTpm, used, now + retry * 1000),
        };
      }
    }
    if (limits.rpm !== null) {
      if (state.exact) state.exact.admit(now);
      else state.minute?.add(REQUESTS, now, 1);
    }
    state.inFlight++;
    const input = minute !== null && limits.inputTpm !== null;
    const output = minute !== null && limits.outputTpm !== null;
    if (input) minute.add(INPUT, now, inputEstimate);
    if (output) minute.add(OUTPUT, now, outputReserve);
    const headers: RateHeaders =
      limits.rpm !== null && requestsRemaining !== null
        ? requestHeaders(limits.rpm, requestsRemaining, now + WINDOW_MS)
        : {};
    return {
      ok: true,
      ticket: {
        state,
        input,
        output,
        inputCharged: inputEstimate,
        outputCharged: outputReserve,
        done: false,
      },
      headers,
    };
  }

  /** Ends a request: frees its concurrency slot and replaces the token charges by the actual figures. */
  function finish(ticket: Ticket, now: number, actualInput: number, actualOutput: number): void {
    if (ticket.done) return;
    ticket.done = true;
    const state = ticket.state;
    state.inFlight--;
    state.lastSlice = Math.floor(now / SLICE_MS);
    if (ticket.input) state.minute?.add(INPUT, now, actualInput - ticket.inputCharged);
    if (ticket.output) state.minute?.add(OUTPUT, now, actualOutput - ticket.outputCharged);
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
        forgotten++;
      }
    }
    return forgotten;
  }

  return { admit, finish, forgetIdle, size: () => states.size };
}

/** RFC 3339 at whole seconds; remembered per second since every admitted request asks. */
function resetTime(at: number): string {
  const second = Math.ceil(at / 1000);
  if (second !== lastResetSecond) {
    lastResetSecond = second;
    lastResetText = new Date(second * 1000).toISOString().replace('.000Z', 'Z');
  }
  return lastResetText;
}

let lastResetSecond = -1;
let lastResetText = '';

function requestHeaders(limit: number, remaining: number, resetAt: number): RateHeaders {
  return {
    'anthropic-ratelimit-requests-limit': String(limit),
    'anthropic-ratelimit-requests-remaining': String(Math.max(0, remaining)),
    'anthropic-ratelimit-requests-reset': resetTime(resetAt),
  };
}

function tokenHeaders(kind: 'input' | 'output', limit: number, used: number, resetAt: number): RateHeaders {
  return {
    [`anthropic-ratelimit-${kind}-tokens-limit`]: String(limit),
    [`anthropic-ratelimit-${kind}-tokens-remaining`]: String(Math.max(0, Math.floor(limit - used))),
    [`anthropic-ratelimit-${kind}-tokens-reset`]: resetTime(resetAt),
  };
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;
