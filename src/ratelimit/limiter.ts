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
  /** The token windows charged at admission (null when that limit did not apply). */
  readonly input: SlicedMinute | null;
  readonly output: SlicedMinute | null;
  inputCharged: number;
  outputCharged: number;
  done: boolean;
}

const WINDOW_MS = 60_000;
const SLICE_MS = 5_000;
/** 12 slices make a minute; one more holds the slice straddling the window's start. */
const SLICES = WINDOW_MS / SLICE_MS + 1;

/**
 * Amounts (tokens, or requests) in a rolling minute, in 5 s slices held in one small typed array
 * (~200 bytes a key). The slice straddling the window's start counts in full: the sum never
 * under-counts the last 60 s, so a limit is never exceeded; a freed amount returns at most 5 s late.
 */
class SlicedMinute {
  // [0, SLICES): slice numbers; [SLICES, 2·SLICES): amounts. A plain array of doubles lives inside the
  // V8 heap; a Float64Array of this size would add an off-heap backing store and its tracking per window.
  private readonly data: number[] = new Array<number>(SLICES * 2).fill(-1);

  add(now: number, amount: number): void {
    const slice = Math.floor(now / SLICE_MS);
    const i = slice % SLICES;
    if (this.data[i] !== slice) {
      this.data[i] = slice;
      this.data[SLICES + i] = 0;
    }
    this.data[SLICES + i] = (this.data[SLICES + i] ?? 0) + amount;
  }

  used(now: number): number {
    const slice = Math.floor(now / SLICE_MS);
    let total = 0;
    for (let i = 0; i < SLICES; i++) {
      const stamp = this.data[i] ?? -1;
      if (stamp >= 0 && slice - stamp < SLICES) total += this.data[SLICES + i] ?? 0;
    }
    return total;
  }

  /** Seconds until `needed` more fits under `limit`, as the oldest slices leave the window. */
  secondsUntil(now: number, limit: number, needed: number): number {
    const slice = Math.floor(now / SLICE_MS);
    let used = this.used(now);
    if (used + needed <= limit) return 0;
    for (let age = SLICES - 1; age >= 0; age--) {
      const stamp = slice - age;
      const i = ((stamp % SLICES) + SLICES) % SLICES;
      if (this.data[i] === stamp) used -= this.data[SLICES + i] ?? 0;
      if (used + needed <= limit) return Math.max(1, Math.ceil(((stamp + SLICES) * SLICE_MS - now) / 1000));
    }
    return WINDOW_MS / 1000;
  }
}

/**
 * Requests in any rolling 60 s. Up to EXACT_RPM_MAX the admission times of the last N requests are
 * kept in a ring (exact: the (N+1)th request waits until the oldest of the last N is 60 s old).
 * Above that, memory would grow with N (8 bytes per request), so 5 s slices are used (SlicedMinute) —
 * conservative: never more than N in any 60 s; a slot frees at most 5 s late.
 */
interface RequestWindow {
  /** Requests that may still be admitted now (0 when full), and when the next slot frees. */
  check(now: number): { free: number; retryAt: number };
  admit(now: number): void;
}

export const EXACT_RPM_MAX = 1_000;

class ExactWindow implements RequestWindow {
  private readonly times: Float64Array;
  private next = 0;

  constructor(private readonly limit: number) {
    this.times = new Float64Array(limit).fill(Number.NEGATIVE_INFINITY);
  }

  check(now: number): { free: number; retryAt: number } {
    // The ring holds admissions oldest-first starting at `next`; find the first one inside the window.
    const n = this.limit;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (now - (this.times[(this.next + mid) % n] ?? 0) >= WINDOW_MS) lo = mid + 1;
      else hi = mid;
    }
    const oldest = this.times[this.next] ?? Number.NEGATIVE_INFINITY;
    return { free: lo, retryAt: oldest + WINDOW_MS };
  }

  admit(now: number): void {
    this.times[this.next] = now;
    this.next = (this.next + 1) % this.limit;
  }
}

class BucketWindow implements RequestWindow {
  private readonly minute = new SlicedMinute();

  constructor(private readonly limit: number) {}

  check(now: number): { free: number; retryAt: number } {
    const free = Math.max(0, this.limit - this.minute.used(now));
    return { free, retryAt: now + this.minute.secondsUntil(now, this.limit, 1) * 1000 };
  }

  admit(now: number): void {
    this.minute.add(now, 1);
  }
}

interface KeyState {
  requests: RequestWindow | null;
  rpm: number | null;
  inFlight: number;
  /** Token windows exist only once a limit on them applies. */
  input: SlicedMinute | null;
  output: SlicedMinute | null;
}

export function createRateLimiter() {
  const states = new Map<string, KeyState>();

  function stateOf(keyId: string, rpm: number | null): KeyState {
    let state = states.get(keyId);
    if (!state) {
      state = { requests: null, rpm: null, inFlight: 0, input: null, output: null };
      states.set(keyId, state);
    }
    if (state.rpm !== rpm) {
      // A changed limit starts a fresh window (history under the old policy is moot).
      state.rpm = rpm;
      state.requests =
        rpm === null ? null : rpm <= EXACT_RPM_MAX ? new ExactWindow(rpm) : new BucketWindow(rpm);
    }
    return state;
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
    if (limits.concurrency !== null && state.inFlight >= limits.concurrency) {
      return { ok: false, kind: 'concurrency', retryAfterS: 1, headers: {} };
    }
    let requestsRemaining: number | null = null;
    if (state.requests && limits.rpm !== null) {
      const window = state.requests.check(now);
      if (window.free <= 0) {
        const retry = Math.max(1, Math.ceil((window.retryAt - now) / 1000));
        return {
          ok: false,
          kind: 'requests',
          retryAfterS: retry,
          headers: requestHeaders(limits.rpm, 0, window.retryAt),
        };
      }
      requestsRemaining = window.free - 1;
    }
    if (limits.inputTpm !== null) state.input ??= new SlicedMinute();
    if (limits.outputTpm !== null) state.output ??= new SlicedMinute();
    const input = limits.inputTpm === null ? null : state.input;
    const output = limits.outputTpm === null ? null : state.output;
    if (input && limits.inputTpm !== null) {
      const used = input.used(now);
      // A single request larger than the whole limit may pass when the window is empty.
      if (used > 0 && used + inputEstimate > limits.inputTpm) {
        const retry = input.secondsUntil(now, limits.inputTpm, inputEstimate);
        return {
          ok: false,
          kind: 'input-tokens',
          retryAfterS: retry,
          headers: tokenHeaders('input', limits.inputTpm, used, now + retry * 1000),
        };
      }
    }
    if (output && limits.outputTpm !== null) {
      const used = output.used(now);
      if (used > 0 && used + outputReserve > limits.outputTpm) {
        const retry = output.secondsUntil(now, limits.outputTpm, outputReserve);
        return {
          ok: false,
          kind: 'output-tokens',
          retryAfterS: retry,
          headers: tokenHeaders('output', limits.outputTpm, used, now + retry * 1000),
        };
      }
    }
    state.requests?.admit(now);
    state.inFlight++;
    input?.add(now, inputEstimate);
    output?.add(now, outputReserve);
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
    ticket.state.inFlight--;
    ticket.input?.add(now, actualInput - ticket.inputCharged);
    ticket.output?.add(now, actualOutput - ticket.outputCharged);
  }

  return { admit, finish };
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
