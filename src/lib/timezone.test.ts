import { describe, expect, it } from 'vitest';
import { dayLabel, dayStartOf, dayStarts, isTimeZone, offsetAt } from './timezone.js';

const QUARTER = 900_000;
const HOUR = 3_600_000;
const iso = (text: string) => Date.parse(text);

describe('reporting timezone days', () => {
  it('knows IANA zones and refuses made-up ones', () => {
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('Asia/Kathmandu')).toBe(true);
    expect(isTimeZone('Mars/Olympus_Mons')).toBe(false);
    expect(isTimeZone('')).toBe(false);
  });

  it('cuts Asia/Kathmandu (+05:45) and Asia/Kolkata (+05:30) days at their local midnight', () => {
    expect(offsetAt(iso('2026-06-01T00:00:00Z'), 'Asia/Kathmandu')).toBe(5 * HOUR + 45 * 60_000);
    expect(dayStartOf(iso('2026-06-01T12:00:00Z'), 'Asia/Kathmandu')).toBe(iso('2026-05-31T18:15:00Z'));
    expect(dayStartOf(iso('2026-06-01T18:14:59.999Z'), 'Asia/Kathmandu')).toBe(iso('2026-05-31T18:15:00Z'));
    expect(dayStartOf(iso('2026-06-01T18:15:00Z'), 'Asia/Kathmandu')).toBe(iso('2026-06-01T18:15:00Z'));
    expect(dayLabel(iso('2026-06-01T18:15:00Z'), 'Asia/Kathmandu')).toBe('2026-06-02');
    expect(dayLabel(iso('2026-06-01T18:14:59Z'), 'Asia/Kathmandu')).toBe('2026-06-01');
    expect(dayStartOf(iso('2026-06-01T12:00:00Z'), 'Asia/Kolkata')).toBe(iso('2026-05-31T18:30:00Z'));
  });

  it('gives America/New_York a 23-hour day in March and a 25-hour day in November', () => {
    const march = dayStarts(iso('2026-03-08T12:00:00Z'), iso('2026-03-09T12:00:00Z'), 'America/New_York');
    expect(march).toEqual([iso('2026-03-08T05:00:00Z'), iso('2026-03-09T04:00:00Z')]);
    const november = dayStarts(iso('2026-11-01T12:00:00Z'), iso('2026-11-02T12:00:00Z'), 'America/New_York');
    expect(november).toEqual([iso('2026-11-01T04:00:00Z'), iso('2026-11-02T05:00:00Z')]);
    expect(november.map((d) => dayLabel(d, 'America/New_York'))).toEqual(['2026-11-01', '2026-11-02']);
  });

  it('follows Australia/Lord_Howe half-hour DST (a 24.5-hour day in April)', () => {
    const days = dayStarts(iso('2026-04-04T20:00:00Z'), iso('2026-04-05T20:00:00Z'), 'Australia/Lord_Howe');
    expect(days).toEqual([iso('2026-04-04T13:00:00Z'), iso('2026-04-05T13:30:00Z')]);
  });

  it('starts a day at the end of a DST gap over midnight (America/Santiago)', () => {
    const start = dayStartOf(iso('2026-09-06T12:00:00Z'), 'America/Santiago');
    expect(dayLabel(start, 'America/Santiago')).toBe('2026-09-06');
    expect(dayLabel(start - 1, 'America/Santiago')).toBe('2026-09-05');
    expect(start).toBe(iso('2026-09-06T04:00:00Z'));
  });

  it('UTC days are UTC days', () => {
    expect(dayStarts(iso('2026-01-01T10:00:00Z'), iso('2026-01-03T00:00:00Z'), 'UTC')).toEqual([
      iso('2026-01-01T00:00:00Z'),
      iso('2026-01-02T00:00:00Z'),
    ]);
    expect(dayStarts(5, 5, 'UTC')).toEqual([]);
  });

  it('starts every day of two years on a 15-minute boundary, each day labelled once, in every zone', () => {
    const zones = [
      'UTC',
      'Asia/Kathmandu',
      'Asia/Kolkata',
      'America/New_York',
      'Australia/Lord_Howe',
      'America/Santiago',
    ];
    for (const zone of zones) {
      const days = dayStarts(iso('2025-01-01T00:00:00Z'), iso('2027-01-01T00:00:00Z'), zone);
      expect(days.length).toBeGreaterThanOrEqual(730);
      expect(days.filter((d) => d % QUARTER !== 0)).toEqual([]);
      const labels = days.map((d) => dayLabel(d, zone));
      expect(new Set(labels).size).toBe(labels.length);
      for (let i = 1; i < days.length; i++) {
        const length = (days[i] ?? 0) - (days[i - 1] ?? 0);
        expect(length).toBeGreaterThanOrEqual(23 * HOUR);
        expect(length).toBeLessThanOrEqual(25 * HOUR);
        expect(dayLabel((days[i] ?? 0) - 1, zone)).toBe(labels[i - 1]);
      }
    }
  });
});
