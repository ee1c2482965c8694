// Dates given by people and scripts: ISO dates/times (UTC) or "7d"-style durations back from now.
// One parser for the CLI options (`--since`, `--until`) and the API's query parameters (`since=`,
// `until=`), so `usage --since 7d` means the same locally and over HTTP.
import { parseDuration } from './duration.js';
import { AppError } from './errors.js';
import { startOfLabelledDay } from './timezone.js';

/**
 * Parses `2026-11-01`, `2026-11-01T12:00:00Z` or a duration such as `7d` (meaning now − 7 days).
 * `what` names the option or field in the message (`--since`, `since`).
 */
export function parseSince(text: string, now: number, what = '--since'): number {
  if (/^\d+[smhdw]$/.test(text)) return now - parseDuration(text, what);
  if (/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?)?$/.test(text)) {
    const iso =
      text.length === 10 ? `${text}T00:00:00Z` : /Z|[+-]\d{2}:\d{2}$/.test(text) ? text : `${text}Z`;
    const ms = Date.parse(iso);
    if (Number.isFinite(ms)) return ms;
  }
  throw new AppError(
    'invalid_input',
    `not a date: ${JSON.stringify(text.slice(0, 40))} (use YYYY-MM-DD, an ISO time, or a duration like 7d)`,
  );
}

/**
 * As parseSince, except that a bare date (`2026-11-01`) is the start of that day in the reporting
 * timezone (usage.timezone), so a usage range names the same days the reports cut.
 */
export function parseReportDate(text: string, now: number, what: string, timeZone: string): number {
  const ms = parseSince(text, now, what);
  return /^\d{4}-\d{2}-\d{2}$/.test(text) ? startOfLabelledDay(text, timeZone) : ms;
}
