import { describe, expect, it } from 'vitest';
import { centsToMicro } from './reports.js';

describe('centsToMicro', () => {
  it('reads cents as decimal strings exactly', () => {
    expect(centsToMicro('123.45')).toBe(1_234_500);
    expect(centsToMicro('0.0001')).toBe(1);
    expect(centsToMicro('50000')).toBe(500_000_000);
    expect(centsToMicro('0.1')).toBe(1_000);
    // Beyond the micro-dollar: rounded half up.
    expect(centsToMicro('1.23455')).toBe(12_346);
    expect(centsToMicro('1.23454')).toBe(12_345);
  });

  it('refuses what is not a decimal string of cents', () => {
    for (const bad of ['-1', '1e3', '', '1.', 'NaN', '12,5']) {
      expect(() => centsToMicro(bad)).toThrow(/not cents/);
    }
  });
});
