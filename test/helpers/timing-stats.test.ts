import { describe, expect, it } from 'vitest';
import { ksCritical, ksDistance, sortedCopy, trimmedMean, winsorizedVariance, yuen } from './timing-stats.js';

/** A deterministic pseudo-random stream (mulberry32), so these tests cannot flake. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Skewed, heavy-tailed "timings": a log-normal-ish body plus rare huge outliers. */
function timings(seed: number, n: number, shift = 0): Float64Array {
  const next = random(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const gauss = Math.sqrt(-2 * Math.log(next() || 1e-12)) * Math.cos(2 * Math.PI * next());
    out[i] = 1000 * Math.exp(0.2 * gauss) + shift + (next() < 0.01 ? 50_000 * next() : 0);
  }
  return sortedCopy(out);
}

describe('trimmed statistics', () => {
  it('trimmedMean and winsorizedVariance match hand-computed values', () => {
    const s = sortedCopy([1, 2, 3, 4, 100]);
    expect(trimmedMean(s, 0.2)).toBe(3); // 2, 3, 4
    // Winsorized: 2, 2, 3, 4, 4 → mean 3, squares 1+1+0+1+1 = 4, / (n−1) = 1
    expect(winsorizedVariance(s, 0.2)).toBe(1);
    expect(trimmedMean(s, 0)).toBe(22);
  });
});

describe('yuen', () => {
  it('finds no difference between two samples of one distribution, outliers and all', () => {
    const result = yuen(timings(1, 20_000), timings(2, 20_000));
    expect(Math.abs(result.t)).toBeLessThan(4);
  });

  it('finds a 2 % shift that the outliers would hide from a plain mean', () => {
    const result = yuen(timings(3, 20_000), timings(4, 20_000, 20));
    expect(result.t).toBeGreaterThan(6);
    expect(result.difference).toBeGreaterThan(10);
    expect(result.difference).toBeLessThan(30);
  });

  it('is symmetric in sign', () => {
    const a = timings(5, 5_000);
    const b = timings(6, 5_000, 50);
    expect(yuen(a, b).t).toBeCloseTo(-yuen(b, a).t, 10);
  });
});

describe('ksDistance', () => {
  it('is 0 for identical samples and 1 for disjoint ones', () => {
    const a = sortedCopy([1, 2, 3]);
    expect(ksDistance(a, a)).toBe(0);
    expect(ksDistance(a, sortedCopy([4, 5, 6]))).toBe(1);
    expect(ksDistance(sortedCopy([1, 3]), sortedCopy([2, 4]))).toBe(0.5);
  });

  it('stays under the critical value for one distribution and exceeds it for a shifted one', () => {
    const critical = ksCritical(20_000, 20_000, 1e-3);
    expect(ksDistance(timings(7, 20_000), timings(8, 20_000))).toBeLessThan(critical);
    expect(ksDistance(timings(9, 20_000), timings(10, 20_000, 50))).toBeGreaterThan(critical);
  });

  it('ksCritical shrinks with sample size', () => {
    expect(ksCritical(100, 100, 0.05)).toBeCloseTo(1.358 * Math.sqrt(2 / 100), 2);
    expect(ksCritical(10_000, 10_000, 0.05)).toBeLessThan(ksCritical(100, 100, 0.05));
  });
});
