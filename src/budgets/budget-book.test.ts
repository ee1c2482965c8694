import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createBudgetBook, IDLE_SCOPE_MS, type ScopeLimits, scopeLimits } from './budget-book.js';

const now = Date.UTC(2026, 10, 22, 12);
const noSpend = async () => 0;

function scopes(limits: { key?: number; user?: number; team?: number; org?: number }): ScopeLimits[] {
  return [
    scopeLimits('key', 'key_1', 'key_1', limits.key === undefined ? {} : { month: limits.key }),
    scopeLimits('user', 'usr_1', 'alice', limits.user === undefined ? {} : { day: limits.user }),
    scopeLimits('team', 'tm_1', 'platform', limits.team === undefined ? {} : { month: limits.team }),
    scopeLimits('org', 'org', 'org', limits.org === undefined ? {} : { total: limits.org }),
  ];
}

describe('budget book', () => {
  it('admits exactly as many reservations as fit, on the tightest scope', async () => {
    const book = createBudgetBook(noSpend);
    const s = scopes({ key: 1000, user: 700, team: 5000 });
    await book.prepare(s, now);
    const results = Array.from({ length: 10 }, () => book.reserve(s, 100, now));
    expect(results.filter((r) => r.ok)).toHaveLength(7);
    const refused = results.find((r) => !r.ok);
    expect(refused).toMatchObject({
      ok: false,
      refusal: { scope: 'user', period: 'day', limitMicro: 700, usedMicro: 700 },
    });
    if (refused && !refused.ok)
      expect(new Date(refused.refusal.resetsAt ?? 0).toISOString()).toBe('2026-11-23T00:00:00.000Z');
  });

  it('settles to the actual cost and releases the rest', async () => {
    const book = createBudgetBook(noSpend);
    const s = scopes({ key: 1000 });
    await book.prepare(s, now);
    const r = book.reserve(s, 600, now);
    if (!r.ok) throw new Error('expected admission');
    expect(r.remainingMicro).toBe(400);
    expect(book.reserve(s, 600, now).ok).toBe(false);
    book.settle(r.reservation, 150);
    book.settle(r.reservation, 150); // idempotent
    expect(book.snapshot('key', 'key_1', 'month', now)).toEqual({ spent: 150, reserved: 0 });
    expect(book.reserve(s, 850, now).ok).toBe(true);
  });

  it('starts from stored spend and loads each counter once', async () => {
    let loads = 0;
    const book = createBudgetBook(async (scope, _id, period) => {
      loads++;
      return scope === 'key' && period === 'month' ? 900 : 0;
    });
    const s = scopes({ key: 1000 });
    await Promise.all([book.prepare(s, now), book.prepare(s, now)]);
    expect(loads).toBe(12);
    expect(book.reserve(s, 101, now).ok).toBe(false);
    expect(book.reserve(s, 100, now).ok).toBe(true);
  });

  it('never lets the sum of admitted reservations exceed a limit (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10_000 }),
        fc.array(fc.integer({ min: 0, max: 3_000 }), { maxLength: 50 }),
        async (limit, amounts) => {
          const book = createBudgetBook(noSpend);
          const s = scopes({ team: limit });
          await book.prepare(s, now);
          let admitted = 0;
          for (const amount of amounts) if (book.reserve(s, amount, now).ok) admitted += amount;
          expect(admitted).toBeLessThanOrEqual(limit);
        },
      ),
    );
  });

  it('uses a fresh counter in a new period', async () => {
    const book = createBudgetBook(noSpend);
    const s = scopes({ user: 100 });
    await book.prepare(s, now);
    const r = book.reserve(s, 100, now);
    if (!r.ok) throw new Error('expected admission');
    book.settle(r.reservation, 100);
    expect(book.reserve(s, 1, now).ok).toBe(false);
    const tomorrow = now + 24 * 3600_000;
    await book.prepare(s, tomorrow);
    expect(book.reserve(s, 100, tomorrow).ok).toBe(true);
  });

  it('settles a reservation made before midnight on the day it was made, and keeps the month', async () => {
    const book = createBudgetBook(noSpend);
    const s = scopes({ user: 100, key: 1_000 });
    const evening = Date.UTC(2026, 10, 22, 23, 59, 59);
    const morning = evening + 2_000;
    await book.prepare(s, evening);
    const late = book.reserve(s, 80, evening);
    if (!late.ok) throw new Error('expected admission');
    await book.prepare(s, morning);
    // The new day's counter is free; the month still holds the open reservation.
    expect(book.snapshot('user', 'usr_1', 'day', morning)).toEqual({ spent: 0, reserved: 0 });
    expect(book.snapshot('key', 'key_1', 'month', morning)).toEqual({ spent: 0, reserved: 80 });
    book.settle(late.reservation, 60);
    expect(book.snapshot('user', 'usr_1', 'day', morning)).toEqual({ spent: 0, reserved: 0 });
    expect(book.snapshot('key', 'key_1', 'month', morning)).toEqual({ spent: 60, reserved: 0 });
    expect(book.snapshot('org', 'org', 'total', morning)).toEqual({ spent: 60, reserved: 0 });
    expect(book.reserve(s, 100, morning).ok).toBe(true);
  });

  it('loads the stored spend of a new period when the day rolls over', async () => {
    const loaded: string[] = [];
    const book = createBudgetBook(async (scope, _id, period, start) => {
      loaded.push(`${scope}/${period}/${new Date(start).toISOString().slice(0, 10)}`);
      return 0;
    });
    const s = scopes({});
    await book.prepare(s, now);
    loaded.length = 0;
    await book.prepare(s, now + 24 * 3600_000);
    expect(loaded.sort()).toEqual([
      'key/day/2026-11-23',
      'org/day/2026-11-23',
      'team/day/2026-11-23',
      'user/day/2026-11-23',
    ]);
    loaded.length = 0;
    await book.prepare(s, Date.UTC(2026, 11, 1, 1));
    expect(loaded.filter((l) => l.includes('/month/'))).toHaveLength(4);
    expect(loaded.filter((l) => l.includes('/total/'))).toHaveLength(0);
  });

  it('forgets idle scopes with nothing reserved and reloads their spend on next use', async () => {
    let loads = 0;
    const stored = new Map<string, number>();
    const book = createBudgetBook(async (scope, id, period) => {
      loads++;
      return stored.get(`${scope}|${id}|${period}`) ?? 0;
    });
    const s = scopes({ key: 1_000 });
    await book.prepare(s, now);
    const done = book.reserve(s, 300, now);
    const open = book.reserve(s.slice(0, 1), 100, now);
    if (!done.ok || !open.ok) throw new Error('expected admissions');
    book.settle(done.reservation, 250);
    stored.set('key|key_1|month', 250); // what the ledger recorded
    const later = now + IDLE_SCOPE_MS + 60_000;
    // The key scope still holds an open reservation; the other three go.
    expect(book.forgetIdle(now + 60_000)).toBe(0);
    expect(book.forgetIdle(later)).toBe(3);
    book.release(open.reservation);
    expect(book.forgetIdle(later)).toBe(1);
    expect(book.size()).toBe(0);
    loads = 0;
    await book.prepare(s, later);
    expect(loads).toBe(12);
    expect(book.reserve(s, 751, later).ok).toBe(false);
    expect(book.reserve(s, 750, later).ok).toBe(true);
  });

  it('keeps a scope whose stored spend is still loading', async () => {
    const pending: Array<(spent: number) => void> = [];
    const book = createBudgetBook(() => new Promise<number>((resolve) => pending.push(resolve)));
    const s = scopes({}).slice(0, 1);
    const prepared = book.prepare(s, now);
    expect(pending).toHaveLength(3);
    expect(book.forgetIdle(now + IDLE_SCOPE_MS + 60_000)).toBe(0);
    for (const resolve of pending) resolve(0);
    await prepared;
    expect(book.forgetIdle(now + IDLE_SCOPE_MS + 60_000)).toBe(1);
  });

  it("frees a past period's counter once its last reservation settles, and reuses it", async () => {
    const book = createBudgetBook(noSpend);
    const s = scopes({ user: 1_000 });
    await book.prepare(s, now);
    expect(book.counters()).toBe(12);
    const open = book.reserve(s, 100, now);
    if (!open.ok) throw new Error('expected admission');
    let day = now;
    for (let i = 1; i <= 40; i++) {
      day = now + i * 24 * 3600_000;
      await book.prepare(s, day);
      const r = book.reserve(s, 10, day);
      if (!r.ok) throw new Error('expected admission');
      book.settle(r.reservation, 10);
    }
    // Forty days later: the current counters, plus the first day's four and a month's four still
    // held by the open reservation.
    expect(book.counters()).toBe(12 + 8);
    book.settle(open.reservation, 50);
    expect(book.counters()).toBe(12);
    expect(book.snapshot('user', 'usr_1', 'day', day)).toEqual({ spent: 10, reserved: 0 });
    expect(book.snapshot('org', 'org', 'total', day)).toEqual({ spent: 450, reserved: 0 });
  });

  it('keeps a counter with an open zero-cost reservation', async () => {
    const book = createBudgetBook(noSpend);
    const s = scopes({}).slice(0, 1);
    await book.prepare(s, now);
    const free = book.reserve(s, 0, now);
    if (!free.ok) throw new Error('expected admission');
    const later = now + IDLE_SCOPE_MS + 60_000;
    expect(book.forgetIdle(later)).toBe(0);
    book.settle(free.reservation, 0);
    expect(book.forgetIdle(later)).toBe(1);
    expect(book.counters()).toBe(0);
  });

  it('names scopes in refusals', async () => {
    const book = createBudgetBook(noSpend);
    const s = scopes({ team: 10 });
    await book.prepare(s, now);
    expect(book.reserve(s, 11, now)).toMatchObject({ ok: false, refusal: { label: 'team platform' } });
    const org = scopes({ org: 10 });
    expect(book.reserve(org, 11, now)).toMatchObject({ ok: false, refusal: { label: 'the organisation' } });
  });
});
