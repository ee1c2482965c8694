// The in-process budget book: spent and reserved micro-USD per scope, period and period start.
// Reservation is check-then-add over every counter in one synchronous step, so concurrent requests
// can never both pass against the same remaining amount (JavaScript runs it without interleaving).
import type { BudgetPeriod, BudgetScope } from '../db/schema.js';
import { PERIODS, periodEnd, periodStart } from './periods.js';

export interface ScopeLimits {
  readonly scope: BudgetScope;
  readonly id: string;
  /** A label for messages, e.g. `user alice`. */
  readonly label: string;
  /** Limit per period in micro-USD; a missing period is unlimited. */
  readonly limits: Readonly<Partial<Record<BudgetPeriod, number>>>;
  /** `scope|id`, built once with the scope (the book's lookups then build no string per request). */
  readonly key: string;
}

/** A scope to reserve on; build it once per key or user and reuse it. */
export function scopeLimits(
  scope: BudgetScope,
  id: string,
  label: string,
  limits: ScopeLimits['limits'],
): ScopeLimits {
  return { scope, id, label, limits, key: scopeKey(scope, id) };
}

function scopeKey(scope: BudgetScope, id: string): string {
  return `${scope}|${id}`;
}

interface Counter {
  spent: number;
  reserved: number;
  /** Whether the settled spend stored for this period has been added (prepare loads it once). */
  loaded: boolean;
}

/**
 * One scope's counters for the current day and month and for all time, found by the scope's key: one
 * map entry per scope, no string per period. A new day or month gets a new counter object, so a
 * reservation made before the change settles on the counter it was made on.
 */
interface ScopeCounters {
  day: number;
  month: number;
  /** Counters in PERIODS order: day, month, total. */
  readonly counters: [Counter, Counter, Counter];
  /** The minute of the last reservation (an idle scope is forgotten, see forgetIdle). */
  lastMinute: number;
}

/** A scope unused this long, with nothing reserved, is dropped; its next request reloads it. */
export const IDLE_SCOPE_MS = 10 * 60_000;

export interface Reservation {
  readonly counters: readonly Counter[];
  readonly amount: number;
  settled: boolean;
}

export interface BudgetRefusal {
  readonly scope: BudgetScope;
  readonly label: string;
  readonly period: BudgetPeriod;
  readonly limitMicro: number;
  readonly usedMicro: number;
  readonly resetsAt: number | null;
}

export type ReserveResult =
  | { ok: true; reservation: Reservation; remainingMicro: number | null }
  | { ok: false; refusal: BudgetRefusal };

/** Reads settled spend of one counter from durable storage. */
export type SpendLoader = (
  scope: BudgetScope,
  id: string,
  period: BudgetPeriod,
  start: number,
) => Promise<number>;

function freshCounter(): Counter {
  return { spent: 0, reserved: 0, loaded: false };
}

export function createBudgetBook(load: SpendLoader) {
  const scopes = new Map<string, ScopeCounters>();
  const loading = new Map<Counter, Promise<void>>();

  /** The scope's counters, rolled over to the periods containing `now`. */
  function countersOf(s: ScopeLimits, now: number): ScopeCounters {
    const day = periodStart('day', now);
    let entry = scopes.get(s.key);
    if (!entry) {
      entry = {
        day,
        month: periodStart('month', now),
        counters: [freshCounter(), freshCounter(), freshCounter()],
        lastMinute: Math.floor(now / 60_000),
      };
      scopes.set(s.key, entry);
    } else if (entry.day !== day) {
      // Ended periods are dropped; reservations still open on them keep their own counter objects.
      entry.day = day;
      entry.counters[0] = freshCounter();
      const month = periodStart('month', now);
      if (entry.month !== month) {
        entry.month = month;
        entry.counters[1] = freshCounter();
      }
    }
    return entry;
  }

  /** The scope's entry when its three counters are current and loaded: the hot path, one map read. */
  function ready(s: ScopeLimits, now: number): ScopeCounters | null {
    const entry = scopes.get(s.key);
    if (!entry || entry.day !== periodStart('day', now)) return null;
    const c = entry.counters;
    return c[0].loaded && c[1].loaded && c[2].loaded ? entry : null;
  }

  /** Makes sure every counter the scopes need is loaded; call (and await) before reserve. */
  async function prepare(list: readonly ScopeLimits[], now: number): Promise<void> {
    // The hot path: every scope current and loaded, nothing to allocate or await.
    let waits: Promise<void>[] | null = null;
    for (const s of list) {
      if (ready(s, now)) continue;
      const entry = countersOf(s, now);
      for (let p = 0; p < PERIODS.length; p++) {
        const counter = entry.counters[p] as Counter;
        if (counter.loaded) continue;
        let pending = loading.get(counter);
        if (!pending) {
          const period = PERIODS[p] as BudgetPeriod;
          pending = load(
            s.scope,
            s.id,
            period,
            period === 'day' ? entry.day : period === 'month' ? entry.month : 0,
          ).then(
            (spent) => {
              counter.spent += spent;
              counter.loaded = true;
              loading.delete(counter);
            },
            (error: unknown) => {
              loading.delete(counter);
              throw error;
            },
          );
          loading.set(counter, pending);
        }
        if (waits === null) waits = [];
        waits.push(pending);
      }
    }
    if (waits) await Promise.all(waits);
  }

  /**
   * Reserves `amount` on every period counter of every scope, or on none. Counters must be
   * prepared. Unlimited periods are still tracked so a limit set later sees the spend.
   */
  function reserve(list: readonly ScopeLimits[], amount: number, now: number): ReserveResult {
    const touched: Counter[] = [];
    let remaining: number | null = null;
    for (const s of list) {
      // Not prepared (e.g. the day rolled over between prepare and reserve): a new period's counter
      // starts from zero, unloaded, and the next prepare adds the stored spend.
      const entry = ready(s, now) ?? countersOf(s, now);
      entry.lastMinute = Math.floor(now / 60_000);
      const counters = entry.counters;
      for (let p = 0; p < PERIODS.length; p++) {
        const period = PERIODS[p] as BudgetPeriod;
        const counter = counters[p] as Counter;
        touched.push(counter);
        const limit = s.limits[period];
        if (limit === undefined) continue;
        const used = counter.spent + counter.reserved;
        if (used + amount > limit) {
          return {
            ok: false,
            refusal: {
              scope: s.scope,
              label: s.label,
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
    for (const counter of touched) counter.reserved += amount;
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
      counter.reserved -= reservation.amount;
      counter.spent += actual;
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
    const entry = scopes.get(scopeKey(scope, id));
    const current =
      entry !== undefined &&
      (period === 'total' || (period === 'day' ? entry.day : entry.month) === periodStart(period, now));
    const counter = current ? entry.counters[PERIODS.indexOf(period)] : undefined;
    return { spent: counter?.spent ?? 0, reserved: counter?.reserved ?? 0 };
  }

  /**
   * Forgets scopes unused for IDLE_SCOPE_MS with nothing reserved and nothing loading: their spend is
   * in the database (settled reservations were recorded before their answers ended), so the next
   * prepare reloads the same figures. Memory then follows the scopes in use. Returns how many.
   */
  function forgetIdle(now: number): number {
    const cutoff = Math.floor((now - IDLE_SCOPE_MS) / 60_000);
    let forgotten = 0;
    for (const [key, entry] of scopes) {
      if (entry.lastMinute >= cutoff) continue;
      if (entry.counters.some((c) => c.reserved !== 0 || loading.has(c))) continue;
      scopes.delete(key);
      forgotten++;
    }
    return forgotten;
  }

  return { prepare, reserve, settle, release, snapshot, forgetIdle, size: () => scopes.size };
}

export type BudgetBook = ReturnType<typeof createBudgetBook>;
