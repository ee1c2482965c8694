import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INPUT, OUTPUT, REQUESTS, SLICE_MS, SLICES, SlicedMinutes } from './sliced-minutes.js';

const t0 = Date.UTC(2026, 10, 22, 12);

/** The reference: every amount ever added, summed over the slices of the window (no slots, no reuse). */
function referenceUsed(
  events: ReadonlyArray<{ at: number; lane: number; amount: number }>,
  lane: number,
  now: number,
) {
  // A step back in time charges the newest slice seen so far, as the minute does.
  let newest = -1;
  const charged = events.map((e) => {
    newest = Math.max(Math.floor(e.at / SLICE_MS), newest);
    return { slice: newest, lane: e.lane, amount: e.amount };
  });
  const oldest = Math.max(Math.floor(now / SLICE_MS), newest) - SLICES + 1;
  let total = 0;
  for (const c of charged) if (c.lane === lane && c.slice >= oldest) total += c.amount;
  return total;
}

describe('sliced minutes', () => {
  it('sum what was added in the window, lane by lane (property, against a plain list)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            step: fc.oneof(
              fc.integer({ min: -3_000, max: 12_000 }),
              fc.integer({ min: 40_000, max: 90_000 }),
            ),
            lane: fc.constantFrom(REQUESTS, INPUT, OUTPUT),
            amount: fc.integer({ min: -50, max: 1_000 }),
          }),
          { maxLength: 60 },
        ),
        (steps) => {
          const minutes = new SlicedMinutes();
          const m = minutes.alloc();
          const events: Array<{ at: number; lane: number; amount: number }> = [];
          let at = t0;
          for (const step of steps) {
            at += step.step;
            minutes.add(m, step.lane, at, step.amount);
            events.push({ at, lane: step.lane, amount: step.amount });
            for (const lane of [REQUESTS, INPUT, OUTPUT]) {
              for (const later of [0, 4_999, 30_000, 59_999, 65_000, 120_000]) {
                const expected = referenceUsed(events, lane, at + later);
                expect(minutes.used(m, lane, at + later)).toBe(expected);
              }
            }
          }
        },
      ),
    );
  });

  it('tells when enough has left the window', () => {
    const minutes = new SlicedMinutes();
    const m = minutes.alloc();
    minutes.add(m, INPUT, t0, 600);
    minutes.add(m, INPUT, t0 + 20_000, 300);
    expect(minutes.secondsUntil(m, INPUT, t0 + 30_000, 1_000, 100)).toBe(0);
    // The first 600 leave when their slice leaves the window: 65 s after t0 at the latest.
    expect(minutes.secondsUntil(m, INPUT, t0 + 30_000, 1_000, 200)).toBe(35);
    expect(minutes.secondsUntil(m, INPUT, t0 + 30_000, 1_000, 800)).toBe(55);
    expect(minutes.secondsUntil(m, INPUT, t0 + 30_000, 100, 200)).toBe(60);
  });

  it('keeps minutes apart, clears one lane, and reuses freed records', () => {
    const minutes = new SlicedMinutes();
    const all = Array.from({ length: 600 }, () => minutes.alloc());
    all.forEach((m, i) => {
      minutes.add(m, OUTPUT, t0, i);
      minutes.add(m, INPUT, t0, 1);
    });
    for (const [i, m] of all.entries()) expect(minutes.used(m, OUTPUT, t0)).toBe(i);
    const some = all[7] as number;
    minutes.clear(some, OUTPUT);
    expect(minutes.used(some, OUTPUT, t0)).toBe(0);
    expect(minutes.used(some, INPUT, t0)).toBe(1);
    minutes.free(some);
    const again = minutes.alloc();
    expect(again).toBe(some);
    expect(minutes.used(again, INPUT, t0)).toBe(0);
    expect(minutes.capacity()).toBe(600);
  });
});
