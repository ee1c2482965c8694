// Robust two-sample statistics for timing tests (pure): trimmed means with Yuen's Welch-type t, and the
// Kolmogorov–Smirnov distance. Timings are heavy-tailed (GC pauses, preemption by other processes), so
// the tails are trimmed rather than trusted.

/** A sorted copy. */
export function sortedCopy(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/** The mean of the middle (1 − 2·trim) share of sorted values. */
export function trimmedMean(sorted: Float64Array, trim: number): number {
  const g = Math.floor(trim * sorted.length);
  let sum = 0;
  for (let i = g; i < sorted.length - g; i++) sum += sorted[i] as number;
  return sum / (sorted.length - 2 * g);
}

/** The variance of sorted values with each tail's `trim` share pulled in to the nearest kept value. */
export function winsorizedVariance(sorted: Float64Array, trim: number): number {
  const n = sorted.length;
  const g = Math.floor(trim * n);
  const low = sorted[g] as number;
  const high = sorted[n - g - 1] as number;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.min(high, Math.max(low, sorted[i] as number));
  const mean = sum / n;
  let squares = 0;
  for (let i = 0; i < n; i++) {
    const d = Math.min(high, Math.max(low, sorted[i] as number)) - mean;
    squares += d * d;
  }
  return squares / (n - 1);
}

export interface YuenResult {
  /** Trimmed mean of b minus that of a. */
  readonly difference: number;
  /** The difference over its standard error: |t| beyond ~2 is unlikely when a and b come from one distribution. */
  readonly t: number;
  readonly df: number;
}

/** Yuen's test: Welch's t on trimmed means, with winsorized variances (robust to outliers, unequal spread). */
export function yuen(a: Float64Array, b: Float64Array, trim = 0.2): YuenResult {
  const part = (s: Float64Array) => {
    const h = s.length - 2 * Math.floor(trim * s.length);
    return {
      mean: trimmedMean(s, trim),
      d: ((s.length - 1) * winsorizedVariance(s, trim)) / (h * (h - 1)),
      h,
    };
  };
  const pa = part(a);
  const pb = part(b);
  const difference = pb.mean - pa.mean;
  const se = Math.sqrt(pa.d + pb.d);
  const t = se === 0 ? (difference === 0 ? 0 : Number.POSITIVE_INFINITY) : difference / se;
  const df = (pa.d + pb.d) ** 2 / (pa.d ** 2 / (pa.h - 1) + pb.d ** 2 / (pb.h - 1));
  return { difference, t, df };
}

/** The two-sample Kolmogorov–Smirnov statistic: the largest gap between the empirical CDFs (0 … 1). */
export function ksDistance(a: Float64Array, b: Float64Array): number {
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < a.length && j < b.length) {
    const x = Math.min(a[i] as number, b[j] as number);
    while (i < a.length && (a[i] as number) <= x) i++;
    while (j < b.length && (b[j] as number) <= x) j++;
    d = Math.max(d, Math.abs(i / a.length - j / b.length));
  }
  return d;
}

/** The KS distance two samples of one distribution exceed with probability `alpha` (asymptotic). */
export function ksCritical(n: number, m: number, alpha: number): number {
  return Math.sqrt(-Math.log(alpha / 2) / 2) * Math.sqrt((n + m) / (n * m));
}
