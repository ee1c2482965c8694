// Per-key rate limits shared by every instance through Redis (or Valkey): the same limits, headers and
// refusals as the in-process limiter (limiter.ts), each step one atomic script (redis-scripts.ts).
//
// - Requests per minute: exact up to EXACT_RPM_MAX (a ZSET of the admissions of the last 60 s, so at
//   most N in any rolling 60 s); above it the sliced minute (5 s slices, a slot frees at most 5 s late).
// - Input and output tokens per minute: sliced minutes, charged at the request's bound and corrected at
//   finish to the actual figures.
// - Concurrency: one ZSET member per request in flight, scored by when it expires. `finish` removes it
//   (ZREM: a second finish finds nothing). An instance renews its own open slots; one killed with -9
//   stops renewing, and its slots expire after `slotTtlMs` (the longest a request can run, plus a margin).
// - Redis unreachable: every admission that needs it is refused (`unavailable`: the gateway answers 503),
//   never waved through. A finish retries a few times, then leaves the slot to its expiry.
import { randomBytes } from 'node:crypto';
import { type Redis, RedisTimeoutError } from '../redis/connect.js';
import { loadScripts, script } from '../redis/script.js';
import { EXACT_RPM_MAX } from './limiter.js';
import {
  type AdmitResult,
  type RateHeaders,
  type RateLimiter,
  type RateLimits,
  type RateRefusal,
  requestHeaders,
  type Ticket,
  tokenHeaders,
  UNAVAILABLE,
} from './rate-limiter.js';
import { ADMIT_REQUEST, ADMIT_TOKENS, FINISH, RENEW } from './redis-scripts.js';
import { WINDOW_MS } from './sliced-minutes.js';

export interface RedisLimiterOptions {
  /** Opens the connection (called by `start`; see redis/connect.ts for its bounds). */
  readonly connect: () => Promise<Redis>;
  /** Prefix of every key (e.g. `tollgate:`); instances sharing limits share it. */
  readonly prefix: string;
  /** Whether `close` closes the connection (default true; false when another user of it closes it). */
  readonly closeConnection?: boolean;
  /** How long an in-flight slot lives unless its instance renews it. */
  readonly slotTtlMs: number;
  /**
   * Whose clock places requests in the windows: `server` (Redis's TIME: one clock for every instance, so
   * skew between instances changes nothing) or `caller` (the `now` each call passes: tests).
   */
  readonly time?: 'server' | 'caller';
  /** Told (at most every 10 s) when Redis fails a step. */
  readonly onError?: (error: unknown) => void;
  /** Delays between a finish's attempts (default 200 ms, 1 s: three attempts). */
  readonly finishRetryMs?: readonly number[];
}

export interface RedisTicket extends Ticket {
  readonly keyId: string;
  /** Unique across instances: the ZSET member of the request (and of its slot). */
  readonly id: string;
  slot: boolean;
  /** Tokens charged per lane at admission; -1 when the lane was not charged. */
  inputCharged: number;
  outputCharged: number;
  /** The slice (Redis time / 5 s) the tokens were charged in; -1 when none. */
  slice: number;
}

/** The request step, to run alone or in a script with the other steps. */
export interface RequestStep {
  readonly keys: readonly string[];
  readonly args: readonly (string | number)[];
  admitted(at: number, remaining: number, slot: boolean): RateHeaders;
  refused(reply: readonly number[]): RateRefusal;
}

/** The token lanes' step, to run alone or in a script with another store's step. */
export interface TokensStep {
  readonly keys: readonly string[];
  readonly args: readonly (string | number)[];
  charged(slice: number): void;
  refused(reply: readonly number[]): RateRefusal;
}

/** The finish step's keys and arguments (see FINISH). */
export interface FinishStep {
  readonly keys: readonly string[];
  readonly args: readonly (string | number)[];
}

export interface KeyNames {
  readonly requests: string;
  readonly requestsSliced: string;
  readonly inFlight: string;
  readonly input: string;
  readonly output: string;
}

const admitRequestScript = script(ADMIT_REQUEST);
const admitTokensScript = script(ADMIT_TOKENS);
const finishScript = script(FINISH);
const renewScript = script(RENEW);
const NAMES_MAX = 10_000;
const RENEW_BATCH = 500;
const ERROR_REPORT_MS = 10_000;

export function createRedisRateLimiter(options: RedisLimiterOptions) {
  const callerTime = options.time === 'caller';
  const retryDelays = options.finishRetryMs ?? [200, 1_000];
  // Ticket ids are unique across instances: a random instance id, then a counter.
  const instance = randomBytes(6).toString('base64url');
  let sequence = 0;
  let redis: Redis | null = null;
  let renewer: NodeJS.Timeout | null = null;
  let lastReport = Number.NEGATIVE_INFINITY;
  /** Tickets holding a slot: renewed while this instance lives. */
  const open = new Set<RedisTicket>();
  const finishing = new Set<Promise<void>>();
  const names = new Map<string, KeyNames>();

  function namesOf(keyId: string): KeyNames {
    let n = names.get(keyId);
    if (!n) {
      // One hash tag per key: every key of one gateway key lands in one cluster slot.
      const base = `${options.prefix}rl:{${keyId}}:`;
      n = {
        requests: `${base}req`,
        requestsSliced: `${base}req5s`,
        inFlight: `${base}flight`,
        input: `${base}in`,
        output: `${base}out`,
      };
      if (names.size >= NAMES_MAX) names.clear();
      names.set(keyId, n);
    }
    return n;
  }

  function failed(error: unknown): void {
    const now = Date.now();
    if (now - lastReport < ERROR_REPORT_MS) return;
    lastReport = now;
    options.onError?.(error);
  }

  const timeArg = (now: number): number | string => (callerTime ? now : '');

  function newTicket(keyId: string): RedisTicket {
    return {
      keyId,
      id: `${instance}:${++sequence}`,
      done: false,
      slot: false,
      inputCharged: -1,
      outputCharged: -1,
      slice: -1,
    };
  }

  /**
   * The request step (concurrency, requests per minute) for a script of its own (admitRequest) or run
   * with the other steps in one (gateway/shared-steps.ts). Its keys and arguments are built even when
   * neither is limited: the script then only reads the time.
   */
  function requestStep(t: Ticket, limits: RateLimits, now: number): RequestStep {
    const ticket = t as RedisTicket;
    const n = namesOf(ticket.keyId);
    return {
      keys: [n.requests, n.inFlight, n.requestsSliced],
      args: [
        timeArg(now),
        limits.rpm ?? '',
        limits.concurrency ?? '',
        ticket.id,
        options.slotTtlMs,
        EXACT_RPM_MAX,
      ],
      /** Admitted at Redis time `at`, `remaining` more this minute; `slot`: a concurrency slot taken. */
      admitted(at: number, remaining: number, slot: boolean): RateHeaders {
        if (slot) {
          ticket.slot = true;
          open.add(ticket);
        }
        return limits.rpm === null ? {} : requestHeaders(limits.rpm, remaining, at + WINDOW_MS);
      },
      /** request_check's refusal {2, now} or {3, now, retryAtMs}, as the gateway's refusal. */
      refused(r: readonly number[]): RateRefusal {
        if (r[0] === 2) return { ok: false, kind: 'concurrency', retryAfterS: 1, headers: {} };
        const at = r[1] as number;
        const retryAt = r[2] as number;
        return {
          ok: false,
          kind: 'requests',
          retryAfterS: Math.max(1, Math.ceil((retryAt - at) / 1000)),
          headers: requestHeaders(limits.rpm ?? 0, 0, retryAt),
        };
      },
    };
  }

  function admitRequest(keyId: string, limits: RateLimits, now: number): AdmitResult | Promise<AdmitResult> {
    const ticket = newTicket(keyId);
    // Nothing to count: no round trip.
    if (limits.rpm === null && limits.concurrency === null) return { ok: true, ticket, headers: {} };
    const client = redis;
    if (client === null) return UNAVAILABLE;
    const step = requestStep(ticket, limits, now);
    return admitRequestScript
      .run(client, step.keys, step.args)
      .then((reply): AdmitResult => {
        const r = integers(reply);
        if (r[0] !== 1) return step.refused(r);
        return { ok: true, ticket, headers: step.admitted(r[1] as number, r[2] as number, r[3] === 1) };
      })
      .catch((error: unknown) => {
        failed(error);
        // Sent, but answered too late: the slot may be taken. Freed after it on this connection (a
        // ticket Redis never saw changes nothing), so a refused request holds no slot until it expires.
        if (error instanceof RedisTimeoutError) {
          slotMaybeTaken(ticket);
          finish(ticket, now, 0, 0);
        }
        return UNAVAILABLE;
      });
  }

  /**
   * A script that takes this ticket's slot was sent and its reply was lost: the slot may be held, so the
   * ticket's finish frees it (its token charges, unknown, are left standing: they err high).
   */
  function slotMaybeTaken(t: Ticket): void {
    const ticket = t as RedisTicket;
    if (!ticket.done) ticket.slot = true;
  }

  /**
   * The token lanes' step for a script of its own (admitTokens) or run together with a budget step
   * (gateway/shared-steps.ts): null when no lane is limited (nothing to ask), UNAVAILABLE without a
   * connection, else its keys and arguments and how to read its reply.
   */
  function tokensStep(
    t: Ticket,
    limits: RateLimits,
    now: number,
    inputEstimate: number,
    outputReserve: number,
  ): TokensStep | RateRefusal | null {
    if (limits.inputTpm === null && limits.outputTpm === null) return null;
    if (redis === null) return UNAVAILABLE;
    const ticket = t as RedisTicket;
    const n = namesOf(ticket.keyId);
    const input = Math.ceil(inputEstimate);
    const output = Math.ceil(outputReserve);
    return {
      keys: [n.input, n.output],
      args: [timeArg(now), limits.inputTpm ?? '', limits.outputTpm ?? '', input, output],
      /** The lanes were charged in `slice` (Redis time / 5 s). */
      charged(slice: number): void {
        ticket.slice = slice;
        if (limits.inputTpm !== null) ticket.inputCharged = input;
        if (limits.outputTpm !== null) ticket.outputCharged = output;
      },
      /** tokens_check's refusal {lane, now, used, retryAfterS}, as the gateway's refusal. */
      refused(r: readonly number[]): RateRefusal {
        const at = r[1] as number;
        const lane = r[0] === 1 ? 'input' : 'output';
        const limit = (lane === 'input' ? limits.inputTpm : limits.outputTpm) ?? 0;
        const retryAfterS = r[3] as number;
        return {
          ok: false,
          kind: lane === 'input' ? 'input-tokens' : 'output-tokens',
          retryAfterS,
          headers: tokenHeaders(lane, limit, r[2] as number, at + retryAfterS * 1000),
        };
      },
    };
  }

  function admitTokens(
    t: Ticket,
    limits: RateLimits,
    now: number,
    inputEstimate: number,
    outputReserve: number,
  ): RateRefusal | null | Promise<RateRefusal | null> {
    const step = tokensStep(t, limits, now, inputEstimate, outputReserve);
    if (step === null || !('keys' in step)) return step;
    return admitTokensScript
      .run(redis as Redis, step.keys, step.args)
      .then((reply): RateRefusal | null => {
        const r = integers(reply);
        if (r[0] !== 0) return step.refused(r);
        step.charged(r[2] as number);
        return null;
      })
      .catch((error: unknown) => {
        failed(error);
        return UNAVAILABLE;
      });
  }

  /**
   * Marks the ticket finished and answers the finish step's keys and arguments, or null when there is
   * nothing to send (finished already, or it held no slot and charged no tokens).
   */
  function finishStep(t: Ticket, now: number, actualInput: number, actualOutput: number): FinishStep | null {
    const ticket = t as RedisTicket;
    if (ticket.done) return null;
    ticket.done = true;
    open.delete(ticket);
    if (!ticket.slot && ticket.slice < 0) return null;
    const n = namesOf(ticket.keyId);
    return {
      keys: [n.inFlight, n.input, n.output],
      args: [
        timeArg(now),
        ticket.id,
        ticket.inputCharged < 0 ? '' : Math.ceil(actualInput) - ticket.inputCharged,
        ticket.outputCharged < 0 ? '' : Math.ceil(actualOutput) - ticket.outputCharged,
        ticket.slice < 0 ? '' : ticket.slice,
      ],
    };
  }

  function finish(t: Ticket, now: number, actualInput: number, actualOutput: number): void {
    const step = finishStep(t, now, actualInput, actualOutput);
    if (step !== null) sendFinish(step);
  }

  /** Sends a finish step alone: off the request path, never awaited by it, never throwing into it. */
  function sendFinish(step: FinishStep): void {
    const done: Promise<void> = finishWithRetries(step.keys, step.args).finally(() => finishing.delete(done));
    finishing.add(done);
  }

  async function finishWithRetries(
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        if (redis === null) throw new Error('the rate-limit store is closed');
        // Sent again, the first sending may have run: no refund this time (see finish in redis-scripts.ts).
        await finishScript.run(redis, keys, attempt === 0 ? args : [...args, 'r']);
        return;
      } catch (error) {
        const delay = retryDelays[attempt];
        if (delay === undefined) {
          // Given up: the slot expires on its own; a token correction is lost (the charge stands).
          failed(error);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  }

  /** Pushes back the expiry of this instance's open slots: it is alive, their requests still run. */
  async function renew(): Promise<void> {
    const client = redis;
    if (client === null || open.size === 0) return;
    const tickets = [...open];
    for (let i = 0; i < tickets.length; i += RENEW_BATCH) {
      const batch = tickets.slice(i, i + RENEW_BATCH);
      const keys = batch.map((t) => namesOf(t.keyId).inFlight);
      const ids = batch.map((t) => t.id);
      await renewScript.run(client, keys, [timeArg(Date.now()), options.slotTtlMs, ...ids]);
    }
  }

  /**
   * Slots a lease holds (gateway/leases.ts): members `${member}${i}` for i in from..to of the key's
   * in-flight set, renewed with this instance's open tickets until dropped.
   */
  function holdSlots(keyId: string, member: string, from: number, to: number): RedisTicket[] {
    const held: RedisTicket[] = [];
    for (let i = from; i <= to; i++) {
      const t: RedisTicket = { ...newTicket(keyId), id: `${member}${i}`, slot: true };
      open.add(t);
      held.push(t);
    }
    return held;
  }

  /** Stops renewing slots held by a lease (its final script frees them in Redis). */
  function dropSlots(held: readonly Ticket[]): void {
    for (const t of held) {
      t.done = true;
      open.delete(t as RedisTicket);
    }
  }

  return {
    holdSlots,
    dropSlots,
    /** The Redis keys of a gateway key's windows and slots. */
    keysOf: (keyId: string): KeyNames => namesOf(keyId),
    /** The time argument of a script: '' (Redis's clock) or the caller's `now` (tests). */
    timeArg,
    /** How long an in-flight slot lives unless renewed. */
    slotTtlMs: options.slotTtlMs,
    admitRequest,
    admitTokens,
    finish,
    newTicket,
    requestStep,
    tokensStep,
    finishStep,
    sendFinish,
    slotMaybeTaken,
    /** Whether the connection is open (the steps need it). */
    connected: () => redis !== null,
    forgetIdle(): number {
      // Redis expires idle keys itself; only the key-name cache is dropped (rebuilt on use).
      names.clear();
      return 0;
    },
    /** Connects (throws AppError('redis_unavailable') when Redis does not answer) and starts renewing. */
    async start(): Promise<void> {
      redis = await options.connect();
      await loadScripts(redis);
      renewer = setInterval(
        () => {
          renew().catch(failed);
        },
        Math.max(1_000, Math.floor(options.slotTtlMs / 3)),
      );
      renewer.unref();
    },
    /** Finishes pending finishes (bounded by their retries), stops renewing, closes the connection (see closeConnection). */
    async close(): Promise<void> {
      if (renewer) clearInterval(renewer);
      renewer = null;
      await settled();
      const client = redis;
      redis = null;
      if (options.closeConnection !== false) await client?.quit().catch(() => client.disconnect());
    },
    settled,
    /** Slots this instance holds (tests, metrics). */
    openSlots: () => open.size,
    renew,
  } satisfies RateLimiter & Record<string, unknown>;

  async function settled(): Promise<void> {
    while (finishing.size > 0) await Promise.all(finishing);
  }
}

export type RedisRateLimiter = ReturnType<typeof createRedisRateLimiter>;

/** A script's reply: an array of integers, or the store answered something unexpected. */
function integers(reply: unknown): number[] {
  if (!Array.isArray(reply) || !reply.every((v) => typeof v === 'number')) {
    throw new Error('unexpected reply from the rate-limit script');
  }
  return reply as number[];
}
