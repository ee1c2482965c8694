// Calendar days in a reporting timezone (IANA name, e.g. Asia/Kathmandu). Pure: instants are epoch
// milliseconds, the zone's rules come from Intl. Usage reports cut their days here; budgets keep UTC.
// Every real zone today has offsets in whole quarter hours, so its days start on a 15-minute boundary
// and fold exactly out of 15-minute usage rollups.

const formats = new Map<string, Intl.DateTimeFormat>();
const HOUR = 3_600_000;

function formatOf(timeZone: string): Intl.DateTimeFormat {
  let format = formats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formats.set(timeZone, format);
  }
  return format;
}

/** Whether Intl knows the zone (an IANA name such as `Europe/Paris`, or `UTC`). */
export function isTimeZone(timeZone: string): boolean {
  if (timeZone.length === 0 || timeZone.length > 64) return false;
  try {
    formatOf(timeZone);
    return true;
  } catch {
    return false;
  }
}

interface Local {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function localOf(ms: number, timeZone: string): Local {
  const local: Local = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of formatOf(timeZone).formatToParts(ms)) {
    if (part.type in local) local[part.type as keyof Local] = Number(part.value);
  }
  return local;
}

/** The zone's offset from UTC at `ms`, in milliseconds (e.g. +05:45 → 20_700_000). */
export function offsetAt(ms: number, timeZone: string): number {
  const l = localOf(ms, timeZone);
  const wall = Date.UTC(l.year, l.month - 1, l.day, l.hour, l.minute, l.second);
  return wall - (ms - (((ms % 1000) + 1000) % 1000));
}

/** `YYYY-MM-DD` of the day `ms` falls in, in the zone. */
export function dayLabel(ms: number, timeZone: string): string {
  const l = localOf(ms, timeZone);
  return `${String(l.year).padStart(4, '0')}-${String(l.month).padStart(2, '0')}-${String(l.day).padStart(2, '0')}`;
}

/** The first instant of the zone's day that `ms` falls in (midnight, or the end of a DST gap over it). */
export function dayStartOf(ms: number, timeZone: string): number {
  const label = dayLabel(ms, timeZone);
  const l = localOf(ms, timeZone);
  const midnight = Date.UTC(l.year, l.month - 1, l.day);
  // Local midnight minus the offset in force then (twice: the offset at `ms` may differ from midnight's).
  let start = midnight - offsetAt(ms, timeZone);
  start = midnight - offsetAt(start, timeZone);
  if (start <= ms && dayLabel(start, timeZone) === label && dayLabel(start - 1, timeZone) < label)
    return start;
  // Midnight does not exist that day (a DST gap at 00:00): the day begins where the gap ends.
  let lo = ms - 27 * HOUR; // before the day
  let hi = ms; // inside the day
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (dayLabel(mid, timeZone) < label) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** The start of each of the zone's days that overlap [since, until), in order. */
export function dayStarts(since: number, until: number, timeZone: string): number[] {
  const starts: number[] = [];
  if (until <= since) return starts;
  let start = dayStartOf(since, timeZone);
  while (start < until) {
    starts.push(start);
    // Days last 23 to 25 hours (Lord Howe: 23.5 to 24.5): 36 hours on is inside the next one.
    start = dayStartOf(start + 36 * HOUR, timeZone);
  }
  return starts;
}

/** The first instant of the day labelled `YYYY-MM-DD` in the zone. */
export function startOfLabelledDay(day: string, timeZone: string): number {
  const midnightUtc = Date.parse(`${day}T00:00:00Z`);
  // Twelve hours past the zone's midnight lies inside that day whatever the offset (−12:00 … +14:00).
  return dayStartOf(midnightUtc - offsetAt(midnightUtc, timeZone) + 12 * HOUR, timeZone);
}
