// The in-process budget book: spent and reserved micro-USD per scope, period and period start.
// Reservation is check-then-add over every counter in one synchronous step, so concurrent requests
// can never both pass against the same remaining amount (JavaScript runs it without interleaving).
import type { BudgetPeriod, BudgetScope } from '../db/schema.js';
import { CounterSlab } from './counter-slab.js';
import { PERIODS, periodEnd, periodStart } from './periods.js';

export interface ScopeLimits {
  readonly scope: BudgetScope;
  readonly id: string;
  /** The scope's name in messages: a key's id, a user's or team's name (see scopeLabel). */
  readonly name: string;
  /** Limit per period in micro-USD; a missing period is unlimited. */
  readonly limits: Readonly<Partial<Record<BudgetPeriod, number>>>;
}

/** A scope to reserve on; build it once per key or user and reuse it. */
export function scopeLimits(
  scope: BudgetScope,
  id: string,
  name: string,
  limits: ScopeLimits['limits'],
): ScopeLimits {
  return { scope, id, name, limits };
}

/** How a refusal names the scope, e.g. `user alice` (built only when a request is refused). */
export function scopeLabel(s: Pick<ScopeLimits, 'scope' | 'name'>): string {
  return s.scope === 'org' ? 'the organisation' : `${s.scope} ${s.name}`;
}

/**
 * One scope's counters for the current day and month and for all time. Every field is a small
 * integer (V8 keeps them unboxed in the object): periods as day numbers, counters as indices into the
 * book's counter slab. A new day or month gets a new counter, so a reservation made before the change
 * settles on the counter it was made on.
 */
interface ScopeCounters {
  /** The current day and month, as days since the epoch of their first day. */
  day: number;
  month: number;
  /** Counters (slab indices) for the day, the month and all time, in PERIODS order. */
  dayCounter: number;
  monthCounter: number;
  readonly totalCounter: number;
  /** The minute of the last reservation (an idle scope is forgotten, see forgetIdle). */
  lastMinute: number;
}

/** A scope unused this long, with nothing reserved, is dropped; its next request reloads it. */
export const IDLE_SCOPE_MS = 10 * 60_000;

export interface Reservation {
  /** The counters reserved on (slab indices). */
  readonly counters: readonly number[];
  readonly amount: number;
  settled: boolean;
}

export interface BudgetRefusal {
  readonly scope: BudgetScope;
  /** The scope's id (a key's, user's or team's id; the org's). */
  readonly id: string;
  readonly label: string;
  readonly period: BudgetPeriod;
  readonly limitMicro: number;
  readonly usedMicro: number;
  readonly resetsAt: number | null;
}

export type ReserveResult =
  | { ok: true; reservation: Reservation; remainingMicro: number | null }
  | { ok: false; refusal: BudgetRefusal };

/** Why budgets cannot be checked now (the shared store unreachable, or rebuilding): a 503. */
export interface BudgetsUnavailable {
  readonly ok: false;
  readonly refusal: null;
  readonly message: string;
  /** When to retry (rebuilding), or null. */
  readonly retryAfterS: number | null;
}

/** What the shared book (budgets/redis-budget-book.ts) answers. */
export type SharedReserveResult = ReserveResult | BudgetsUnavailable;

/**
 * What the gateway needs of a budget book: this in-process one (SQLite, or no Redis) or the shared one
 * in Redis, whose reserve answers a promise.
 */
export interface Budgets {
  prepare(list: readonly ScopeLimits[], now: number): Promise<void> | null;
  reserve(
    list: readonly ScopeLimits[],
    amount: number,
    now: number,
  ): ReserveResult | Promise<SharedReserveResult>;
  settle(reservation: Reservation, actual: number): void;
  release(reservation: Reservation): void;
  snapshot(
    scope: BudgetScope,
    id: string,
    period: BudgetPeriod,
    now: number,
  ): { spent: number; reserved: number };
  current(
    scope: BudgetScope,
    id: string,
    period: BudgetPeriod,
    now: number,
  ): { spent: number; reserved: number } | null;
  forgetIdle(now: number): number;
}

/** Reads settled spend of one counter from durable storage. */
export type SpendLoader = (
  scope: BudgetScope,
  id: string,
  period: BudgetPeriod,
  start: number,
) => Promise<number>;

const DAY_MS = 86_400_000;

/** Day number (days since the epoch) of the start of `period` containing `now`. */
function dayOf(period: 'day' | 'month', now: number): number {
  return periodStart(period, now) / DAY_MS;
}

export function createBudgetBook(load: SpendLoader) {
  const slab = new CounterSlab();
  // One map per scope type, keyed by the scope's id: no `scope|id` string per scope.
  const maps: Record<BudgetScope, Map<string, ScopeCounters>> = {
    key: new Map(),
    user: new Map(),
    team: new Map(),
    org: new Map(),
  };
  const loading = new Map<number, Promise<void>>();

  /** A counter replaced by a new period's: freed now, or once its reservations settle and its load ends. */
  function retire(counter: number): void {
    if (!slab.held(counter) && !loading.has(counter)) slab.free(counter);
    else slab.markRetired(counter);
  }

  function freeIfDone(counter: number): void {
    if (slab.retired(counter) && !slab.held(counter) && !loading.has(counter)) slab.free(counter);
  }

  /** The scope's counters, rolled over to the periods containing `now`. */
  function countersOf(s: ScopeLimits, now: number): ScopeCounters {
    const map = maps[s.scope];
    const day = dayOf('day', now);
    let entry = map.get(s.id);
    if (!entry) {
      entry = {
        day,
        month: dayOf('month', now),
        dayCounter: slab.alloc(),
        monthCounter: slab.alloc(),
        totalCounter: slab.alloc(),
        lastMinute: Math.floor(now / 60_000),
      };
      map.set(s.id, entry);
    } else if (entry.day !== day) {
      // Ended periods are dropped; reservations still open on them keep their counters until settled.
      entry.day = day;
      retire(entry.dayCounter);
      entry.dayCounter = slab.alloc();
      const month = dayOf('month', now);
      if (entry.month !== month) {
        entry.month = month;
        retire(entry.monthCounter);
        entry.monthCounter = slab.alloc();
      }
    }
    return entry;
  }

  /** The scope's entry when its three counters are current and loaded: the hot path, one map read. */
  function ready(s: ScopeLimits, now: number): ScopeCounters | null {
    const entry = maps[s.scope].get(s.id);
    if (!entry || entry.day !== dayOf('day', now)) return null;
    return slab.loaded(entry.dayCounter) && slab.loaded(entry.monthCounter) && slab.loaded(entry.totalCounter)
      ? entry
      : null;
  }

  function counterOf(entry: ScopeCounters, p: number): number {
    return p === 0 ? entry.dayCounter : p === 1 ? entry.monthCounter : entry.totalCounter;
  }

  /**
   * Loads the stored spend of every counter the scopes need that is not loaded yet; call before
   * reserve, and await what it returns. Null when everything is loaded: the hot path awaits nothing.
   */
  function prepare(list: readonly ScopeLimits[], now: number): Promise<void> | null {
    let waits: Promise<void>[] | null = null;
    for (const s of list) {
      if (ready(s, now)) continue;
      const entry = countersOf(s, now);
      for (let p = 0; p < PERIODS.length; p++) {
        const counter = counterOf(entry, p);
        if (slab.loaded(counter)) continue;
        let pending = loading.get(counter);
        if (!pending) {
          const period = PERIODS[p] as BudgetPeriod;
          const start = period === 'day' ? entry.day * DAY_MS : period === 'month' ? entry.month * DAY_MS : 0;
          pending = load(s.scope, s.id, period, start).then(
            (spent) => {
              loading.delete(counter);
              slab.addSpent(counter, spent);
              slab.markLoaded(counter);
              freeIfDone(counter);
            },
            (error: unknown) => {
              loading.delete(counter);
              freeIfDone(counter);
              throw error;
            },
          );
          loading.set(counter, pending);
        }
        if (waits === null) waits = [];
        waits.push(pending);
      }
    }
    return waits === null ? null : Promise.all(waits).then(() => undefined);
  }

  /**
   * Reserves `amount` on every period counter of every scope, or on none. Counters must be
   * prepared. Unlimited periods are still tracked so a limit set later sees the spend.
   */
  function reserve(list: readonly ScopeLimits[], amount: number, now: number): ReserveResult {
    // Exact length (a list grown by push keeps room for 17): it lives as long as the request.
    const touched: number[] = new Array<number>(list.length * PERIODS.length);
    let n = 0;
    let remaining: number | null = null;
    for (const s of list) {
      // Not prepared (e.g. the day rolled over between prepare and reserve): a new period's counter
      // starts from zero, unloaded, and the next prepare adds the stored spend.
      const entry = ready(s, now) ?? countersOf(s, now);
      entry.lastMinute = Math.floor(now / 60_000);
      for (let p = 0; p < PERIODS.length; p++) {
        const counter = counterOf(entry, p);
        touched[n++] = counter;
        const period = PERIODS[p] as BudgetPeriod;
        const limit = s.limits[period];
        if (limit === undefined) continue;
        const used = slab.spent(counter) + slab.reserved(counter);
        if (used + amount > limit) {
          return {
            ok: false,
            refusal: {
              scope: s.scope,
              id: s.id,
              label: scopeLabel(s),
              period,
              limitMicro: limit,
              usedMicro: used,
              resetsAt: periodEnd(period, now),
            },
          };
        }
        const left = limit - used - amount;
        if (remaining === null || left < remaining) remaining = left;
      }
    }
    for (const counter of touched) slab.hold(counter, amount);
    return {
      ok: true,
      reservation: { counters: touched, amount, settled: false },
      remainingMicro: remaining,
    };
  }

  /** Converts a reservation into actual spend (releasing the difference). Idempotent. */
  function settle(reservation: Reservation, actual: number): void {
    if (reservation.settled) return;
    reservation.settled = true;
    for (const counter of reservation.counters) {
      slab.settle(counter, reservation.amount, actual);
      freeIfDone(counter);
    }
  }

  function release(reservation: Reservation): void {
    settle(reservation, 0);
  }

  /** Spent and reserved of one counter (for reports and tests). */
  function snapshot(
    scope: BudgetScope,
    id: string,
    period: BudgetPeriod,
    now: number,
  ): { spent: number; reserved: number } {
    const entry = maps[scope].get(id);
    const current =
      entry !== undefined &&
      (period === 'total' || (period === 'day' ? entry.day : entry.month) === dayOf(period, now));
    if (!current) return { spent: 0, reserved: 0 };
    const counter = counterOf(entry, PERIODS.indexOf(period));
    return { spent: slab.spent(counter), reserved: slab.reserved(counter) };
  }

  /**
   * Spent and reserved of a scope's current period when the book holds it loaded, else null (a scope
   * never used or forgotten as idle: its spend is only in the database). For the metrics' gauges.
   */
  function current(
    scope: BudgetScope,
    id: string,
    period: BudgetPeriod,
    now: number,
  ): { spent: number; reserved: number } | null {
    const entry = maps[scope].get(id);
    if (entry === undefined) return null;
    if (period !== 'total' && (period === 'day' ? entry.day : entry.month) !== dayOf(period, now))
      return null;
    const counter = counterOf(entry, PERIODS.indexOf(period));
    if (!slab.loaded(counter)) return null;
    return { spent: slab.spent(counter), reserved: slab.reserved(counter) };
  }

  /**
   * Forgets scopes unused for IDLE_SCOPE_MS with nothing reserved and nothing loading: their spend is
   * in the database (settled reservations were recorded before their answers ended), so the next
   * prepare reloads the same figures. Memory then follows the scopes in use. Returns how many.
   */
  function forgetIdle(now: number): number {
    const cutoff = Math.floor((now - IDLE_SCOPE_MS) / 60_000);
    let forgotten = 0;
    const busy = (c: number) => slab.held(c) || loading.has(c);
    for (const map of Object.values(maps)) {
      for (const [id, entry] of map) {
        if (entry.lastMinute >= cutoff) continue;
        if (busy(entry.dayCounter) || busy(entry.monthCounter) || busy(entry.totalCounter)) continue;
        map.delete(id);
        slab.free(entry.dayCounter);
        slab.free(entry.monthCounter);
        slab.free(entry.totalCounter);
        forgotten++;
      }
    }
    return forgotten;
  }

  return {
    prepare,
    reserve,
    settle,
    release,
    snapshot,
    current,
    forgetIdle,
    size: () => maps.key.size + maps.user.size + maps.team.size + maps.org.size,
    /** Counters held, retired ones still reserved on included (for tests). */
    counters: () => slab.size(),
  };
}

export type BudgetBook = ReturnType<typeof createBudgetBook>;
