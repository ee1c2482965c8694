// The shared budget book: the same counters as the in-process book (scope, id, period, period start),
// kept in Redis so that every instance serving one database reserves against the same figures. One
// script checks and reserves every scope × period at once (budget-scripts.ts); settlement and release
// are one script keyed by the reservation's id, so a second settlement, or one after expiry, never
// counts twice. The ledger (PostgreSQL) stays the truth: a counter Redis lacks is loaded from settled
// spend (SpendLoader) inside the reserving script, and Redis restarted empty is seen by its missing
// epoch key — nothing is admitted until requests admitted before are over and the counters are rebuilt.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BudgetPeriod, BudgetScope } from '../db/schema.js';
import { answeredWithin, RedisTimeoutError } from '../redis/connect.js';
import { loadScripts, type Script, script } from '../redis/script.js';
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
/** Settlements in flight beyond which a reservation whose reply was lost is left to expire. */
const MAX_LOST_RELEASES = 1_000;
/**
 * Instances that started up to this long after Redis (by Redis's clock; instances' clocks may be off by
 * as much) are still taken to have started before it.
 */
export const REDIS_START_MARGIN_MS = 10_000;

/** Ids renewed per script call (bounded work per call). */
const RENEW_BATCH = 500;

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
  /** The reservation's id in Redis (a group's, for a request admitted with others). */
  readonly id: string;
  /** The group this request's part belongs to, and its number in it; absent for one of its own. */
  readonly group?: Group;
  readonly member?: number;
}

/** A settlement's keys (deadlines, reservation) and arguments (id, actual, part, member). */
export interface SettleStep {
  readonly keys: readonly string[];
  readonly args: readonly (string | number)[];
}

/**
 * The reservation of several requests admitted in one script (gateway/shared-batch.ts): one hash in
 * Redis holding their worst cases together, renewed as one while any of them runs, each request
 * settling its own part.
 */
interface Group {
  readonly id: string;
  /** Its requests not settled yet; renewed while above 0. */
  pending: number;
  settled: boolean;
}

/** The budget step of a batch admission: its keys and arguments, and what the script's replies mean. */
export interface BatchBudget {
  /** epoch, deadlines, the group's reservation, then one hash per scope. */
  readonly keys: readonly string[];
  /** prefix, group id, ttl ms, grace ms, scopes, day start, month start, then 3 limits per scope. */
  readonly args: readonly (string | number)[];
  /** The admitted requests' reservations (their worst cases, in order): one group, renewed as one. */
  admitted(worsts: readonly number[]): Reservation[];
  /** The script's refusal {'R', counter, used}, as the in-process book words it. */
  refusal(counter: number, used: number): BudgetRefusal;
  /** The script was sent and its reply lost: whatever it reserved is released. */
  lost(): void;
  /** Runs the batch's script on the book's connection. */
  run(s: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>;
  /** The script failed: logged, and the budgets' answer (unreachable). */
  unavailable(error: unknown): BudgetsUnavailable;
}

/**
 * Another store's step run in the same script as a budget step, so that both cost one round trip
 * (gateway/shared-steps.ts). The script runs the companion's part on its own KEYS and ARGV, which come
 * first, then the budget step on the rest. On a reservation the companion's check comes first and
 * nothing is taken unless both fit: a refusal of the companion's answers {'T', ...its reply}; an
 * admission answers {'OK', remaining, ...the companion's reply}.
 */
export interface Companion {
  readonly script: Script;
  readonly keys: readonly string[];
  readonly args: readonly (string | number)[];
  /** Told when the script was sent but its reply came too late: the companion's step may have run. */
  readonly lost?: () => void;
}

/** The companion's step refused (its reply); no reservation was taken. */
export interface CompanionRefused {
  readonly ok: false;
  readonly refusal: null;
  readonly companion: readonly number[];
}

/** A reservation's result, with the companion's reply when it was admitted or refused by it. */
export type CompanionReserveResult =
  | { ok: true; reservation: Reservation; remainingMicro: number | null; companion: readonly number[] }
  | CompanionRefused
  | Exclude<SharedReserveResult, { ok: true }>;

const NO_COUNTERS: readonly number[] = [];

const SCRIPTS = {
  reserve: script(RESERVE_SCRIPT),
  settle: script(SETTLE_SCRIPT),
  renew: script(RENEW_SCRIPT),
  epoch: script(EPOCH_SCRIPT),
} as const;
const run = (redis: Redis, s: Script, keys: readonly string[], args: readonly (string | number)[]) =>
  s.run(redis, keys, args);

// The cause is logged (onError), never echoed to the client: 5xx details stay inside.
export const UNREACHABLE: BudgetsUnavailable = {
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
  /** Reservations (and groups) admitted here and not yet settled: renewed every renewMs. */
  const open = new Set<{ readonly id: string; readonly settled: boolean }>();
  /** Settlements still being retried (Redis unreachable). */
  let retrying = 0;
  const unavailable = (error: unknown): BudgetsUnavailable => {
    options.onError?.('checking budgets in Redis', error);
    return UNREACHABLE;
  };

  /** The counters' hash of each scope (one per scope: its periods are fields, see budget-scripts.ts). */
  function keysOf(list: readonly ScopeLimits[]): string[] {
    const keys = new Array<string>(list.length);
    for (let i = 0; i < list.length; i++) {
      const s = list[i] as ScopeLimits;
      keys[i] = `${prefix}c:${s.scope}:${s.id}`;
    }
    return keys;
  }

  /**
   * Whether another instance may have requests in flight that a missing epoch would forget: one that
   * started before this Redis did (Redis restarted empty under it). Instances started after Redis —
   * a fresh deployment, several started together — have admitted nothing without an epoch. Unknown
   * (INFO refused): assume so.
   */
  async function othersMayBeRunning(othersStartedAt: readonly number[]): Promise<boolean> {
    if (othersStartedAt.length === 0) return false;
    try {
      const [info, time] = await answeredWithin(Promise.all([redis().info('server'), redis().time()]));
      const uptime = /^uptime_in_seconds:(\d+)/m.exec(info)?.[1];
      if (uptime === undefined) return true;
      const redisStartedAt =
        Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000) - Number(uptime) * 1000;
      return othersStartedAt.some((t) => t < redisStartedAt + REDIS_START_MARGIN_MS);
    } catch {
      return true;
    }
  }

  async function startEpoch(quarantine: number): Promise<string> {
    return String(
      await run(redis(), SCRIPTS.epoch, [epochKey], [randomBytes(6).toString('hex'), quarantine]),
    );
  }

  /** A reservation's (or a hold's) id: unique across instances. */
  function nextId(): string {
    return `${instance}.${(sequence++).toString(36)}`;
  }

  /** budget_check's arguments (budget-scripts.ts) for reservation `id` of `amount` over `list` at `now`. */
  function reserveArgs(
    list: readonly ScopeLimits[],
    now: number,
    id: string,
    amount: number,
  ): (string | number)[] {
    const args: (string | number)[] = new Array(8 + 3 * list.length);
    args[0] = prefix;
    args[1] = id;
    args[2] = amount;
    args[3] = ttlMs;
    args[4] = graceMs;
    args[5] = list.length;
    args[6] = periodStart('day', now);
    args[7] = periodStart('month', now);
    let i = 8;
    for (const s of list) {
      for (const period of PERIODS) args[i++] = s.limits[period] ?? '';
    }
    return args;
  }

  /**
   * Checks and takes a reservation on every scope × period at once. With a companion, the companion's
   * step runs in the same script, before the reservation and all-or-nothing with it (see Companion).
   */
  async function reserveWith(
    list: readonly ScopeLimits[],
    amount: number,
    now: number,
    companion?: Companion,
  ): Promise<CompanionReserveResult> {
    const n = list.length;
    const id = nextId();
    const args = reserveArgs(list, now, id, amount);
    const keys = [epochKey, deadlinesKey, `${prefix}r:${id}`, ...keysOf(list)];
    // At most: one epoch start, one load of missing counters, and the reservation itself.
    for (let round = 0; round < 4; round++) {
      let reply: unknown;
      try {
        reply = await (companion
          ? run(redis(), companion.script, [...companion.keys, ...keys], [...companion.args, ...args])
          : run(redis(), SCRIPTS.reserve, keys, args));
      } catch (error) {
        // Sent, but answered too late: the reservation (and the companion's step) may be taken all the
        // same. Released after it on this connection (an id Redis never saw changes nothing), so a
        // refused request does not hold the budget until the reservation expires — at most
        // MAX_LOST_RELEASES at a time (a Redis that hangs times out every request): the rest expire.
        if (error instanceof RedisTimeoutError) {
          companion?.lost?.();
          releaseLost(id, amount);
        }
        return unavailable(error);
      }
      const r = reply as [string, ...number[]];
      if (r[0] === 'OK') {
        const reservation: SharedReservation = { counters: NO_COUNTERS, amount, settled: false, id };
        open.add(reservation);
        const remaining = Number(r[1]);
        return {
          ok: true,
          reservation,
          remainingMicro: remaining < 0 ? null : remaining,
          companion: r.slice(2) as number[],
        };
      }
      if (r[0] === 'T') return { ok: false, refusal: null, companion: r.slice(1) as number[] };
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
        if (args.length === 8 + 3 * n) args.length = 8 + 6 * n;
        args.fill('', 8 + 3 * n);
        await Promise.all(
          r.slice(1).map(async (at) => {
            const index = Number(at) - 1;
            const scope = list[Math.floor(index / PERIODS.length)] as ScopeLimits;
            const period = PERIODS[index % PERIODS.length] as BudgetPeriod;
            args[8 + 3 * n + index] = await load(scope.scope, scope.id, period, periodStart(period, now));
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

  /**
   * A reservation whose script's reply came too late may be taken all the same: it is released after it
   * on this connection (an id Redis never saw changes nothing), so a refused request does not hold the
   * budget until the reservation expires — at most MAX_LOST_RELEASES at a time (a Redis that hangs
   * times out every request): the rest expire.
   */
  function releaseLost(id: string, amount: number): void {
    const lost: SharedReservation = { counters: NO_COUNTERS, amount, settled: false, id };
    if (retrying < MAX_LOST_RELEASES) settle(lost, 0);
  }

  /** The budget step of a batch admission over `list` at `now` (see BatchBudget). */
  function batch(list: readonly ScopeLimits[], now: number): BatchBudget {
    const id = nextId();
    const args: (string | number)[] = [
      prefix,
      id,
      ttlMs,
      graceMs,
      list.length,
      periodStart('day', now),
      periodStart('month', now),
    ];
    for (const s of list) {
      for (const period of PERIODS) args.push(s.limits[period] ?? '');
    }
    return {
      keys: [epochKey, deadlinesKey, `${prefix}r:${id}`, ...keysOf(list)],
      args,
      admitted(worsts) {
        const group: Group = { id, pending: worsts.length, settled: false };
        if (worsts.length === 0) return [];
        // Renewed as one reservation (renew reads its id and whether it is settled).
        open.add(group);
        return worsts.map(
          (amount, member): SharedReservation => ({
            counters: NO_COUNTERS,
            amount,
            settled: false,
            id,
            group,
            member,
          }),
        );
      },
      refusal: (counter, used) => refusalAt(list, counter - 1, used, now),
      lost: () => releaseLost(id, 0),
      run: (s, keys, args) => run(redis(), s, keys, args),
      unavailable,
    };
  }

  /** Runs a settlement's script, retrying with backoff while Redis is unreachable; never throws. */
  async function sendScript(
    s: Script,
    keys: readonly string[],
    args: readonly (string | number)[],
    retryFlagAt?: number,
  ): Promise<void> {
    const retries = options.settleRetries ?? SETTLE_RETRIES;
    for (let attempt = 0; ; attempt++) {
      try {
        await run(redis(), s, keys, attempt === 0 ? args : retried(args, retryFlagAt));
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

  /**
   * Sends a script that settles (see settleStep), off the request path and never throwing into it;
   * `close` waits for it. A retry after a reply that came too late settles nothing twice: a reservation
   * of its own is gone after its settlement, and a group's request is marked settled in its hash. A
   * retry sends the same arguments, but for `retryFlagAt`: a script whose other steps are not idempotent
   * reads 'r' there and runs them as a second sending must (SETTLE_BATCH).
   */
  function sendSettlement(
    s: Script,
    keys: readonly string[],
    args: readonly (string | number)[],
    retryFlagAt?: number,
  ): void {
    retrying++;
    void sendScript(s, keys, args, retryFlagAt).finally(() => {
      retrying--;
    });
  }

  /**
   * Marks a reservation settled (once: null after that) and answers the settlement's keys and arguments
   * for budget_settle (budget-scripts.ts), to send alone (settle) or with others in one script.
   */
  function settleStep(reservation: Reservation, actual: number): SettleStep | null {
    if (reservation.settled) return null;
    reservation.settled = true;
    const r = reservation as SharedReservation;
    if (r.group) {
      if (--r.group.pending === 0) {
        r.group.settled = true;
        open.delete(r.group);
      }
    } else open.delete(r);
    return {
      keys: [deadlinesKey, `${prefix}r:${r.id}`],
      // A group's request settles its own part; a reservation of its own (or a lost one) the whole.
      args: [r.id, actual, r.group ? r.amount : '', r.member ?? ''],
    };
  }

  /**
   * Converts a reservation into actual spend (releasing the difference). Idempotent. A companion's step
   * (another store's finish) runs in the same script; it is not run when the reservation was settled.
   */
  function settle(reservation: Reservation, actual: number, companion?: Companion): boolean {
    const step = settleStep(reservation, actual);
    if (step === null) return false;
    if (companion) {
      sendSettlement(companion.script, [...companion.keys, ...step.keys], [...companion.args, ...step.args]);
    } else sendSettlement(SCRIPTS.settle, step.keys, step.args);
    return true;
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

  /**
   * The budget step of a lease's script (gateway/leases.ts): the hold `id` checked for `check` (its
   * room) on every scope × period of `list` at `now`. Keys: epoch, deadlines, the hold, one per scope.
   */
  function leaseStep(list: readonly ScopeLimits[], now: number, id: string, check: number) {
    return {
      keys: [epochKey, deadlinesKey, `${prefix}r:${id}`, ...keysOf(list)],
      args: reserveArgs(list, now, id, check),
    };
  }

  let timer: NodeJS.Timeout | null = null;
  let renewing: Promise<unknown> | null = null;

  return {
    /** Counters load inside reserve (one round trip more, the first time): nothing to prepare. */
    prepare: (_list: readonly ScopeLimits[], _now: number): Promise<void> | null => null,
    // Without a companion no reply is a companion's refusal.
    reserve: (list: readonly ScopeLimits[], amount: number, now: number) =>
      reserveWith(list, amount, now) as Promise<SharedReserveResult>,
    reserveWith,
    batch,
    settle,
    settleStep,
    sendSettlement,
    release: (reservation: Reservation) => {
      settle(reservation, 0);
    },
    /** The shared figures are in Redis: the API and metrics read the ledger's instead. */
    snapshot: (_scope: BudgetScope, _id: string, _period: BudgetPeriod, _now: number) => ({
      spent: 0,
      reserved: 0,
    }),
    current: (_scope: BudgetScope, _id: string, _period: BudgetPeriod, _now: number) => null,
    forgetIdle: (_now: number) => 0,
    renew,
    /**
     * Starts the epoch if Redis has none and the renewal timer. `othersStartedAt`: when each other live
     * instance started; one that started before this Redis may have requests in flight that Redis
     * forgot, so a missing epoch is then waited out as after a restart.
     */
    async start(othersStartedAt: readonly number[]): Promise<void> {
      if (client === null && typeof source === 'function') client = await source();
      await loadScripts(redis());
      await startEpoch((await othersMayBeRunning(othersStartedAt)) ? quarantineMs : 0);
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
      // Settlements gathered this turn go in its check phase (gateway/shared-batch.ts): let them leave.
      await new Promise((resolve) => setImmediate(resolve));
      const until = Date.now() + 5_000;
      while (retrying > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
      if (owned) client?.disconnect();
    },
    /** Reservations admitted here and not settled (tests). */
    openCount: () => open.size,
    leaseStep,
    /** A new id for a hold (a lease's). */
    newId: nextId,
    /** The Redis key of hold `id`, and the deadlines' set. */
    holdKey: (id: string): string => `${prefix}r:${id}`,
    deadlinesKey,
    /**
     * Renews hold `id` with this instance's reservations until `settled` is set on the answer (then it
     * is dropped at the next renewal, or by `untrack`).
     */
    track(id: string): { readonly id: string; settled: boolean } {
      const held = { id, settled: false };
      open.add(held);
      return held;
    },
    untrack(held: { readonly id: string; settled: boolean }): void {
      held.settled = true;
      open.delete(held);
    },
    /** Runs a script on the book's connection (a lease's chunk: awaited, not retried). */
    run: (s: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> =>
      run(redis(), s, keys, args),
  };
}

export type RedisBudgetBook = ReturnType<typeof createRedisBudgetBook>;

/** A retry's arguments: the same, with 'r' at `flagAt` when the script takes a retry flag. */
function retried(
  args: readonly (string | number)[],
  flagAt: number | undefined,
): readonly (string | number)[] {
  if (flagAt === undefined) return args;
  const copy = [...args];
  copy[flagAt] = 'r';
  return copy;
}
