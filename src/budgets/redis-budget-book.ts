// The shared budget book: the same counters as the in-process book (scope, id, period, period start),
// kept in Redis so that every instance serving one database reserves against the same figures. One
// script checks and reserves every scope × period at once (budget-scripts.ts); settlement and release
// are one script keyed by the reservation's id, so a second settlement, or one after expiry, never
// counts twice. The ledger (PostgreSQL) stays the truth: a counter Redis lacks is loaded from settled
// spend (SpendLoader) inside the reserving script, and Redis restarted empty is seen by its missing
// epoch key — nothing is admitted until requests admitted before are over and the counters are rebuilt.
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BudgetPeriod, BudgetScope } from '../db/schema.js';
import {
  type BudgetRefusal,
  type BudgetsUnavailable,
  type Reservation,
  type ScopeLimits,
  type SharedReserveResult,
  type SpendLoader,
  scopeLabel,
} from './budget-book.js';
import { EPOCH_SCRIPT, RENEW_SCRIPT, RESERVE_SCRIPT, SETTLE_SCRIPT } from './budget-scripts.js';
import { PERIODS, periodEnd, periodStart } from './periods.js';

export interface RedisBookOptions {
  /** Key prefix, e.g. `tollgate:b:` (tests use one each). */
  readonly prefix: string;
  /**
   * How long a reservation lives without renewal: longer than any request can run between two
   * renewals (upstream.timeout_ms + the retry cap + a margin; see reservationTtlMs).
   */
  readonly ttlMs: number;
  /** How often this instance renews its open reservations (well under ttlMs). */
  readonly renewMs: number;
  /** Settlement retries while Redis is unreachable (then the reservation expires on its own). */
  readonly settleRetries?: number;
  /** Told of a settlement given up on, and of renewal failures (logged by the gateway). */
  readonly onError?: (what: string, error: unknown) => void;
}

/** Settlements retried with backoff from 250 ms, doubling, this many times (~1 min in all). */
const SETTLE_RETRIES = 8;
/** Ids renewed per script call (bounded work per call). */
const RENEW_BATCH = 500;
/** A counter of an ended day or month is kept this long after its end (late settlements, reports). */
const COUNTER_KEEP_MS = 2 * 86_400_000;

/**
 * How long a reservation may live unrenewed: the longest an attempt waits for an answer
 * (timeout_ms), plus the time retries may start within (the retry budget), plus a margin for the record's
 * commit and a renewal's round trip.
 */
export function reservationTtlMs(timeoutMs: number, retryBudgetMs: number, marginMs = 5_000): number {
  return timeoutMs + retryBudgetMs + marginMs;
}

/** A reservation of the shared book (the in-process fields stay empty). */
interface SharedReservation extends Reservation {
  readonly id: string;
  readonly keys: readonly string[];
}

const NO_COUNTERS: readonly number[] = [];

const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
const SCRIPTS = {
  reserve: { text: RESERVE_SCRIPT, sha: sha1(RESERVE_SCRIPT) },
  settle: { text: SETTLE_SCRIPT, sha: sha1(SETTLE_SCRIPT) },
  renew: { text: RENEW_SCRIPT, sha: sha1(RENEW_SCRIPT) },
  epoch: { text: EPOCH_SCRIPT, sha: sha1(EPOCH_SCRIPT) },
} as const;

type Script = (typeof SCRIPTS)[keyof typeof SCRIPTS];

/** EVALSHA, loading the script on NOSCRIPT (a Redis restarted or flushed forgets its scripts). */
async function run(
  redis: Redis,
  script: Script,
  keys: readonly string[],
  args: readonly (string | number)[],
) {
  try {
    return await redis.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return redis.eval(script.text, keys.length, ...keys, ...args);
  }
}

// The cause is logged (onError), never echoed to the client: 5xx details stay inside.
const UNREACHABLE: BudgetsUnavailable = {
  ok: false,
  refusal: null,
  message:
    'budgets cannot be checked: the shared budget store (Redis) is unreachable; no request is admitted until it answers',
  retryAfterS: null,
};
const LEDGER_DOWN: BudgetsUnavailable = {
  ok: false,
  refusal: null,
  message: 'budgets cannot be checked: the spend of a budget could not be read from the database',
  retryAfterS: null,
};

/**
 * `source`: a connection, or how to open one at start (the book then owns and closes it). Before start
 * every reservation is refused as unavailable.
 */
export function createRedisBudgetBook(
  source: Redis | (() => Promise<Redis>),
  load: SpendLoader,
  options: RedisBookOptions,
) {
  const { prefix, ttlMs } = options;
  const owned = typeof source === 'function';
  let client: Redis | null = owned ? null : source;
  const redis = (): Redis => {
    if (client === null) throw new Error('not connected yet');
    return client;
  };
  const graceMs = ttlMs;
  const epochKey = `${prefix}epoch`;
  const deadlinesKey = `${prefix}deadlines`;
  // After Redis lost its data, nothing is admitted for this long (and longer while requests admitted
  // before still run): every live instance renews within it, so each one's vanished reservations extend it.
  const quarantineMs = 2 * options.renewMs + 2_000;
  const instance = randomBytes(6).toString('hex');
  let sequence = 0;
  /** Reservations admitted here and not yet settled: renewed every renewMs. */
  const open = new Set<SharedReservation>();
  /** Settlements still being retried (Redis unreachable). */
  let retrying = 0;
  const unavailable = (error: unknown): BudgetsUnavailable => {
    options.onError?.('checking budgets in Redis', error);
    return UNREACHABLE;
  };

  /** The counter keys of a scope list at `now` (one string per scope × period). */
  function keysOf(list: readonly ScopeLimits[], now: number): string[] {
    const keys = new Array<string>(list.length * PERIODS.length);
    let n = 0;
    for (const s of list) {
      for (const period of PERIODS)
        keys[n++] = `${prefix}c:${s.scope}:${s.id}:${period}:${periodStart(period, now)}`;
    }
    return keys;
  }

  async function startEpoch(quarantine: number): Promise<string> {
    return String(
      await run(redis(), SCRIPTS.epoch, [epochKey], [randomBytes(6).toString('hex'), quarantine]),
    );
  }

  async function reserve(
    list: readonly ScopeLimits[],
    amount: number,
    now: number,
  ): Promise<SharedReserveResult> {
    const keys = keysOf(list, now);
    const n = keys.length;
    const id = `${instance}.${(sequence++).toString(36)}`;
    const args: (string | number)[] = new Array(6 + 3 * n);
    args[0] = prefix;
    args[1] = id;
    args[2] = amount;
    args[3] = ttlMs;
    args[4] = graceMs;
    args[5] = n;
    let i = 0;
    for (const s of list) {
      for (const period of PERIODS) {
        const limit = s.limits[period];
        args[6 + i] = limit === undefined ? '' : limit;
        args[6 + n + i] = '';
        const end = periodEnd(period, now);
        // Kept until its period ended (by this instance's clock) and a while after.
        args[6 + 2 * n + i] = end === null ? 0 : Math.max(end - now, 0) + COUNTER_KEEP_MS;
        i++;
      }
    }
    const scriptKeys = [epochKey, deadlinesKey, `${prefix}r:${id}`, ...keys];
    // At most: one epoch start, one load of missing counters, and the reservation itself.
    for (let round = 0; round < 4; round++) {
      let reply: unknown;
      try {
        reply = await run(redis(), SCRIPTS.reserve, scriptKeys, args);
      } catch (error) {
        return unavailable(error);
      }
      const r = reply as [string, ...number[]];
      if (r[0] === 'OK') {
        const reservation: SharedReservation = { counters: NO_COUNTERS, amount, settled: false, id, keys };
        open.add(reservation);
        const remaining = Number(r[1]);
        return { ok: true, reservation, remainingMicro: remaining < 0 ? null : remaining };
      }
      if (r[0] === 'R') return { ok: false, refusal: refusalAt(list, Number(r[1]) - 1, Number(r[2]), now) };
      if (r[0] === 'Q') {
        const waitS = Math.ceil(Number(r[1]) / 1000);
        return {
          ok: false,
          refusal: null,
          message: `budgets cannot be checked yet: the shared budget store (Redis) lost its data and is being rebuilt from the ledger; retry in ${waitS} s`,
          retryAfterS: waitS,
        };
      }
      if (r[0] === 'E') {
        // Redis lost its data (or is new): requests admitted before may still run, so wait them out.
        try {
          await startEpoch(quarantineMs);
        } catch (error) {
          return unavailable(error);
        }
        continue;
      }
      try {
        // 'L': counters this Redis does not hold yet, loaded from the ledger's settled spend.
        await Promise.all(
          r.slice(1).map(async (at) => {
            const index = Number(at) - 1;
            const scope = list[Math.floor(index / PERIODS.length)] as ScopeLimits;
            const period = PERIODS[index % PERIODS.length] as BudgetPeriod;
            args[6 + n + index] = await load(scope.scope, scope.id, period, periodStart(period, now));
          }),
        );
      } catch (error) {
        options.onError?.('loading budget spend from the database', error);
        return LEDGER_DOWN;
      }
    }
    return unavailable(new Error('the reservation did not settle after loading its counters'));
  }

  function refusalAt(list: readonly ScopeLimits[], index: number, used: number, now: number): BudgetRefusal {
    const s = list[Math.floor(index / PERIODS.length)] as ScopeLimits;
    const period = PERIODS[index % PERIODS.length] as BudgetPeriod;
    return {
      scope: s.scope,
      id: s.id,
      label: scopeLabel(s),
      period,
      limitMicro: s.limits[period] ?? 0,
      usedMicro: used,
      resetsAt: periodEnd(period, now),
    };
  }

  /** Sends one settlement, retrying with backoff while Redis is unreachable; never throws. */
  async function send(r: SharedReservation, actual: number): Promise<void> {
    const keys = [deadlinesKey, `${prefix}r:${r.id}`, ...r.keys];
    const retries = options.settleRetries ?? SETTLE_RETRIES;
    for (let attempt = 0; ; attempt++) {
      try {
        await run(redis(), SCRIPTS.settle, keys, [r.id, actual]);
        return;
      } catch (error) {
        if (attempt >= retries) {
          // Given up: the reservation expires on its own (released); its spend is in the ledger.
          options.onError?.('settling a budget reservation', error);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt).unref());
      }
    }
  }

  /** Converts a reservation into actual spend (releasing the difference). Idempotent. */
  function settle(reservation: Reservation, actual: number): void {
    if (reservation.settled) return;
    reservation.settled = true;
    const r = reservation as SharedReservation;
    open.delete(r);
    retrying++;
    void send(r, actual).finally(() => {
      retrying--;
    });
  }

  /** Pushes the deadlines of this instance's open reservations forward; sweeps expired ones. */
  async function renew(): Promise<{ vanished: number; swept: number }> {
    const list = [...open];
    let vanished = 0;
    let swept = 0;
    for (let from = 0; from === 0 || from < list.length; from += RENEW_BATCH) {
      // Built right before it is sent: a reservation settled meanwhile is left out (its settlement went
      // first on this connection and deleted it, which must not read as vanished with Redis's data).
      const ids = list
        .slice(from, from + RENEW_BATCH)
        .filter((r) => !r.settled)
        .map((r) => r.id);
      const reply = (await run(
        redis(),
        SCRIPTS.renew,
        [epochKey, deadlinesKey],
        [prefix, ttlMs, graceMs, quarantineMs, randomBytes(6).toString('hex'), ...ids],
      )) as [number, number];
      vanished += Number(reply[0]);
      swept += Number(reply[1]);
    }
    return { vanished, swept };
  }

  let timer: NodeJS.Timeout | null = null;
  let renewing: Promise<unknown> | null = null;

  return {
    /** Counters load inside reserve (one round trip more, the first time): nothing to prepare. */
    prepare: (_list: readonly ScopeLimits[], _now: number): Promise<void> | null => null,
    reserve,
    settle,
    release: (reservation: Reservation) => settle(reservation, 0),
    /** The shared figures are in Redis: the API and metrics read the ledger's instead. */
    snapshot: (_scope: BudgetScope, _id: string, _period: BudgetPeriod, _now: number) => ({
      spent: 0,
      reserved: 0,
    }),
    current: (_scope: BudgetScope, _id: string, _period: BudgetPeriod, _now: number) => null,
    forgetIdle: (_now: number) => 0,
    renew,
    /**
     * Starts the epoch if Redis has none (`othersLive`: other instances may have requests in flight,
     * so a missing epoch is waited out as after a restart) and the renewal timer.
     */
    async start(othersLive: boolean): Promise<void> {
      if (client === null && typeof source === 'function') client = await source();
      await startEpoch(othersLive ? quarantineMs : 0);
      timer = setInterval(() => {
        if (renewing) return;
        renewing = renew()
          .catch((error: unknown) => options.onError?.('renewing budget reservations', error))
          .finally(() => {
            renewing = null;
          });
      }, options.renewMs);
      timer.unref();
    },
    /** Stops renewing; waits (bounded by the retries) for settlements in flight. */
    async close(): Promise<void> {
      if (timer) clearInterval(timer);
      await renewing;
      const until = Date.now() + 5_000;
      while (retrying > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
      if (owned) client?.disconnect();
    },
    /** Reservations admitted here and not settled (tests). */
    openCount: () => open.size,
  };
}

export type RedisBudgetBook = ReturnType<typeof createRedisBudgetBook>;
