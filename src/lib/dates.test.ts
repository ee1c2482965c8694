import { describe, expect, it } from 'vitest';
import { parseSince } from './dates.js';

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
