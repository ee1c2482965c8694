// How numbers, money and times read on the pages. Money arrives as integer micro-USD.

const usd2 = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const usd4 = new Intl.NumberFormat('en-US', {
  style: 'currency',
  currency: 'USD',
  minimumFractionDigits: 2,
  maximumFractionDigits: 4,
});
const whole = new Intl.NumberFormat('en-US');
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

/** $12.34; amounts under a dollar keep up to four decimals ($0.0042). */
export function usd(micro: number | null | undefined): string {
  if (micro === null || micro === undefined) return '—';
  const dollars = micro / 1_000_000;
  return Math.abs(dollars) < 1 && dollars !== 0 ? usd4.format(dollars) : usd2.format(dollars);
}

export function count(n: number | null | undefined): string {
  return n === null || n === undefined ? '—' : whole.format(n);
}

export function tokens(n: number): string {
  return n >= 100_000 ? compact.format(n) : whole.format(n);
}

/** A time as the reader's browser shows it, or "never". */
export function when(iso: string | null | undefined): string {
  if (!iso) return 'never';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** Share of a limit, 0..1 (null without a limit). */
export function share(spent: number, limit: number | null | undefined): number | null {
  if (limit === null || limit === undefined || limit <= 0) return null;
  return Math.min(1, Math.max(0, spent / limit));
}
