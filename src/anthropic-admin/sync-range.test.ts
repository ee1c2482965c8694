import { describe, expect, it } from 'vitest';
import { parseDate, syncRange } from './sync-range.js';

const NOW = Date.parse('2026-12-06T21:30:00Z');

describe('syncRange', () => {
  it('defaults to one hour ago and the seven days before, from a UTC midnight', () => {
    const r = syncRange(NOW);
    expect(new Date(r.until).toISOString()).toBe('2026-12-06T20:30:00.000Z');
    expect(new Date(r.since).toISOString()).toBe('2026-11-29T00:00:00.000Z');
  });

  it('takes days and RFC 3339 times; since is cut to its UTC day', () => {
    const r = syncRange(NOW, '2026-12-01T15:00:00+02:00', '2026-12-03');
    expect(new Date(r.since).toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(new Date(r.until).toISOString()).toBe('2026-12-03T00:00:00.000Z');
  });

  it('refuses unreadable dates, an empty range and more than a year', () => {
    expect(() => parseDate('--since', '12/01/2026')).toThrow('--since takes a date');
    expect(() => parseDate('--since', '2026-12-01T10:00:00')).toThrow('--since takes a date');
    expect(() => syncRange(NOW, '2026-12-03', '2026-12-03')).toThrow('--until must be after --since');
    expect(() => syncRange(NOW, '2025-01-01', '2026-12-03')).toThrow('at most 366 days');
    expect(syncRange(NOW, '2025-12-03', '2026-12-03').since).toBe(Date.parse('2025-12-03T00:00:00Z'));
  });
});
