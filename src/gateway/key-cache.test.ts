import { describe, expect, it } from 'vitest';
import { effectiveByok } from './key-cache.js';

describe('effectiveByok', () => {
  it("the user's own setting wins, else the team's, else preferred", () => {
    expect(effectiveByok(null, null)).toBe('preferred');
    expect(effectiveByok(null, 'required')).toBe('required');
    expect(effectiveByok('preferred', 'required')).toBe('preferred');
    expect(effectiveByok('required', null)).toBe('required');
    expect(effectiveByok('required', 'preferred')).toBe('required');
  });
});
