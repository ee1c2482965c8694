// The date range of `tollgate anthropic sync` (pure): whole UTC days from `since`; `until` defaults to
// one hour ago because Anthropic's reports lag, `since` to seven days before `until`.
import { AppError } from '../lib/errors.js';

export const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const DEFAULT_DAYS = 7;
const MAX_DAYS = 366;

/** `YYYY-MM-DD` (UTC midnight) or an RFC 3339 timestamp with its offset. */
export function parseDate(flag: string, value: string): number {
  const day = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const stamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(value);
  const at = day ? Date.parse(`${value}T00:00:00Z`) : stamp ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(at)) {
    throw new AppError(
      'invalid_input',
      `${flag} takes a date (YYYY-MM-DD) or an RFC 3339 time (2026-12-01T09:00:00Z), not "${value.slice(0, 40)}"`,
    );
  }
  return at;
}

export const utcDay = (at: number): string =>
  new Date(Math.floor(at / DAY_MS) * DAY_MS).toISOString().slice(0, 10);

/** How a range is filled in: `days` back from the end by default, the end `lagMs` before now by default. */
export interface RangeDefaults {
  readonly days: number;
  readonly lagMs: number;
}

const SYNC_DEFAULTS: RangeDefaults = { days: DEFAULT_DAYS, lagMs: HOUR_MS };

export function syncRange(
  now: number,
  since?: string,
  until?: string,
  defaults: RangeDefaults = SYNC_DEFAULTS,
): { since: number; until: number } {
  const end = until === undefined ? now - defaults.lagMs : parseDate('--until', until);
  const start =
    Math.floor((since === undefined ? end - defaults.days * DAY_MS : parseDate('--since', since)) / DAY_MS) *
    DAY_MS;
  if (end <= start) throw new AppError('invalid_input', '--until must be after --since');
  if (end - start > MAX_DAYS * DAY_MS)
    throw new AppError('invalid_input', `sync at most ${MAX_DAYS} days at once`);
  return { since: start, until: end };
}
