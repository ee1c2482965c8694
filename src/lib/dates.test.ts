import { describe, expect, it } from 'vitest';
import { parseReportDate, parseSince } from './dates.js';

const NOW = Date.parse('2026-12-04T12:00:00Z');

describe('parseSince', () => {
  it('reads dates (UTC midnight), ISO times (UTC unless an offset is given) and durations back from now', () => {
    expect(parseSince('2026-11-01', NOW)).toBe(Date.parse('2026-11-01T00:00:00Z'));
    expect(parseSince('2026-11-01T12:30', NOW)).toBe(Date.parse('2026-11-01T12:30:00Z'));
    expect(parseSince('2026-11-01T12:30:00.250+02:00', NOW)).toBe(Date.parse('2026-11-01T10:30:00.250Z'));
    expect(parseSince('7d', NOW)).toBe(NOW - 7 * 86_400_000);
    expect(parseSince('90m', NOW)).toBe(NOW - 90 * 60_000);
  });

  it('round-trips the ISO time the CLI sends to the API', () => {
    const ms = NOW - 12_345;
    expect(parseSince(new Date(ms).toISOString(), NOW, 'since')).toBe(ms);
  });

  it('refuses anything else with invalid_input, naming no secret and the forms it accepts', () => {
    for (const bad of ['yesterday', '2026-13-45', '2026-11-01 12:00', '7 days', '', '-7d'])
      expect(() => parseSince(bad, NOW, 'since'), bad).toThrow(
        expect.objectContaining({ code: 'invalid_input' }),
      );
    expect(() => parseSince('nope', NOW)).toThrow(/not a date: "nope" \(use YYYY-MM-DD/);
  });
});

describe('parseReportDate', () => {
  const now = Date.parse('2026-12-05T08:00:00Z');
  it('reads a bare date as the start of that day in the reporting timezone', () => {
    expect(new Date(parseReportDate('2026-11-01', now, 'since', 'Asia/Kathmandu')).toISOString()).toBe(
      '2026-10-31T18:15:00.000Z',
    );
    expect(new Date(parseReportDate('2026-11-01', now, 'since', 'America/New_York')).toISOString()).toBe(
      '2026-11-01T04:00:00.000Z',
    );
    expect(new Date(parseReportDate('2026-11-01', now, 'since', 'Pacific/Kiritimati')).toISOString()).toBe(
      '2026-10-31T10:00:00.000Z',
    );
  });
  it('leaves UTC dates, explicit times and durations as parseSince reads them', () => {
    for (const text of ['2026-11-01', '2026-11-01T05:00:00Z', '2026-11-01T05:00', '7d'])
      expect(parseReportDate(text, now, 'since', 'UTC')).toBe(parseSince(text, now, 'since'));
    expect(parseReportDate('2026-11-01T05:00:00Z', now, 'since', 'Asia/Kathmandu')).toBe(
      Date.parse('2026-11-01T05:00:00Z'),
    );
    expect(() => parseReportDate('yesterday', now, 'since', 'Asia/Kathmandu')).toThrow(/not a date/);
  });
});
