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
  return { scope, id, label, limits, key: `${scope}|${id}` };
}

interface Counter {
  spent: number;
  reserved: number;
  /** Settled spend read from the database when the counter was created (null until loaded). */
  loaded: boolean;
}

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

export function counterKey(scope: BudgetScope, id: string, period: BudgetPeriod, start: number): string {
  return `${scope}|${id}|${period}|${start}`;
}

export function createBudgetBook(load: SpendLoader) {
  const counters = new Map<string, Counter>();
  const loading = new Map<string, Promise<void>>();
  let currentDay = -1;
  // Per scope, the day it was resolved for and its [day, month, total] counters: the hot path does one
  // lookup per scope instead of building three keys.
  const resolved = new Map<string, { day: number; counters: Counter[] }>();

  function resolvedFor(s: ScopeLimits, now: number): Counter[] | null {
    const entry = resolved.get(s.key);
    return entry && entry.day === periodStart('day', now) ? entry.counters : null;
  }

  /** Makes sure every counter the scopes need is loaded; call (and await) before reserve. */
  async function prepare(scopes: readonly ScopeLimits[], now: number): Promise<void> {
    evictPastPeriods(now);
    // The hot path: every scope already resolved for today, nothing to allocate or await.
    let waits: Promise<void>[] | null = null;
    let unresolved = false;
    for (const s of scopes) {
      if (resolvedFor(s, now)) continue;
      unresolved = true;
      for (const period of PERIODS) {
        const start = periodStart(period, now);
        const key = counterKey(s.scope, s.id, period, start);
        if (counters.get(key)?.loaded) continue;
        let pending = loading.get(key);
        if (!pending) {
          pending = load(s.scope, s.id, period, start).then(
            (spent) => {
              const existing = counters.get(key);
              if (existing) {
                existing.spent += spent;
                existing.loaded = true;
              } else counters.set(key, { spent, reserved: 0, loaded: true });
              loading.delete(key);
            },
            (error: unknown) => {
              loading.delete(key);
              throw error;
            },
          );
          loading.set(key, pending);
        }
        if (waits === null) waits = [];
        waits.push(pending);
      }
    }
    if (!unresolved) return;
    if (waits) await Promise.all(waits);
    for (const s of scopes) {
      if (resolvedFor(s, now)) continue;
      const list = PERIODS.map((period) =>
        counters.get(counterKey(s.scope, s.id, period, periodStart(period, now))),
      );
      if (list.every((c) => c?.loaded))
        resolved.set(s.key, {
          day: periodStart('day', now),
          counters: list as Counter[],
        });
    }
  }

  /**
   * Reserves `amount` on every period counter of every scope, or on none. Counters must be
   * prepared. Unlimited periods are still tracked so a limit set later sees the spend.
   */
  function reserve(scopes: readonly ScopeLimits[], amount: number, now: number): ReserveResult {
    const touched: Counter[] = [];
    let remaining: number | null = null;
    for (const s of scopes) {
      const known = resolvedFor(s, now);
      for (let p = 0; p < PERIODS.length; p++) {
        const period = PERIODS[p] as BudgetPeriod;
        const counter = known?.[p] ?? counterFor(s, period, now);
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
    const counter = counters.get(counterKey(scope, id, period, periodStart(period, now)));
    return { spent: counter?.spent ?? 0, reserved: counter?.reserved ?? 0 };
  }

  function counterFor(s: ScopeLimits, period: BudgetPeriod, now: number): Counter {
    const key = counterKey(s.scope, s.id, period, periodStart(period, now));
    let counter = counters.get(key);
    if (!counter) {
      // Not prepared (e.g. the period rolled over between prepare and reserve): start from zero
      // but mark unloaded so the next prepare adds the stored spend.
      counter = { spent: 0, reserved: 0, loaded: false };
      counters.set(key, counter);
    }
    return counter;
  }

  /** Drops counters of days and months that have ended, once per day. */
  function evictPastPeriods(now: number): void {
    const day = periodStart('day', now);
    if (day === currentDay) return;
    currentDay = day;
    resolved.clear();
    const month = periodStart('month', now);
    for (const [key, counter] of counters) {
      const [, , period, start] = key.split('|');
      const current = period === 'day' ? day : period === 'month' ? month : 0;
      if (Number(start) !== current && counter.reserved === 0) counters.delete(key);
    }
  }

  return { prepare, reserve, settle, release, snapshot };
}

export type BudgetBook = ReturnType<typeof createBudgetBook>;
