import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isAppError } from '../lib/errors.js';
import {
  ADMIN_TOKEN_LENGTH,
  adminTokenHint,
  GATEWAY_KEY_LENGTH,
  gatewayKeyHint,
  generateGatewayKey,
  hashGatewayKey,
  hasValidAdminTokenShape,
  hasValidGatewayKeyShape,
  newAdminToken,
  safeEqualHex,
} from './gateway-key.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

describe('gateway key format', () => {
  it('has a fixed length, the prefix and a base62 body', () => {
    expect(GATEWAY_KEY_LENGTH).toBe(52);
    expect(ADMIN_TOKEN_LENGTH).toBe(53);
    for (let i = 0; i < 200; i++) {
      const key = generateGatewayKey();
      expect(key).toMatch(/^tg_[0-9A-Za-z]{49}$/);
      expect(hasValidGatewayKeyShape(key)).toBe(true);
      const token = newAdminToken();
      expect(token).toMatch(/^tga_[0-9A-Za-z]{49}$/);
      expect(hasValidAdminTokenShape(token)).toBe(true);
    }
  });

  it('does not repeat', () => {
    const keys = new Set(Array.from({ length: 1000 }, generateGatewayKey));
    expect(keys.size).toBe(1000);
  });

  it('keeps gateway keys and admin tokens apart', () => {
    const key = generateGatewayKey();
    const token = newAdminToken();
    expect(hasValidAdminTokenShape(key)).toBe(false);
    expect(hasValidGatewayKeyShape(token)).toBe(false);
    // Relabelling the body with the other prefix fails the checksum.
    expect(hasValidAdminTokenShape(`tga_${key.slice(3)}`)).toBe(false);
    expect(hasValidGatewayKeyShape(`tg_${token.slice(4)}`)).toBe(false);
  });

  it('rejects hostile inputs without throwing', () => {
    const key = generateGatewayKey();
    const hostile: unknown[] = [
      '',
      '   ',
      'tg_',
      `${key}\u0000`,
      `${key.slice(0, -1)}\u0000`,
      `${key.slice(0, -1)}é`,
      `${key.slice(0, -2)}😀`,
      `${key.slice(0, -1)}\n`,
      "tg_' OR '1'='1' -- ",
      `${"tg_' OR 1=1; --".padEnd(GATEWAY_KEY_LENGTH, ' ')}`,
      key.toUpperCase(),
      ` ${key.slice(1)}`,
      'x'.repeat(64 * 1024),
      'tg_'.repeat(100_000),
      undefined,
      null,
      42,
      { length: GATEWAY_KEY_LENGTH },
    ];
    for (const candidate of hostile) {
      expect(hasValidGatewayKeyShape(candidate as string)).toBe(false);
      expect(hasValidAdminTokenShape(candidate as string)).toBe(false);
    }
  });

  it('rejects arbitrary strings and any single-character mutation of a valid key', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
        expect(hasValidGatewayKeyShape(s)).toBe(false);
        expect(hasValidGatewayKeyShape(`tg_${s}`)).toBe(false);
      }),
      { numRuns: 2000 },
    );
    const key = generateGatewayKey();
    fc.assert(
      fc.property(
        fc.nat({ max: key.length - 1 }),
        fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
        (index, replacement) => {
          fc.pre(key[index] !== replacement);
          const mutated = key.slice(0, index) + replacement + key.slice(index + 1);
          expect(hasValidGatewayKeyShape(mutated)).toBe(false);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('rejects every base62 substitution and adjacent transposition of one key', () => {
    const key = generateGatewayKey();
    for (let i = 3; i < key.length; i++) {
      for (const ch of BASE62) {
        if (ch === key[i]) continue;
        expect(hasValidGatewayKeyShape(key.slice(0, i) + ch + key.slice(i + 1))).toBe(false);
      }
      if (i + 1 < key.length && key[i] !== key[i + 1]) {
        const swapped = key.slice(0, i) + (key[i + 1] ?? '') + (key[i] ?? '') + key.slice(i + 2);
        expect(hasValidGatewayKeyShape(swapped)).toBe(false);
      }
    }
  });

  it('runs 100,000 shape checks', () => {
    const key = generateGatewayKey();
    const bad = `${key.slice(0, -1)}${key.endsWith('0') ? '1' : '0'}`;
    let valid = 0;
    for (let i = 0; i < 100_000; i++) {
      if (hasValidGatewayKeyShape(i % 2 === 0 ? key : bad)) valid++;
    }
    expect(valid).toBe(50_000);
  });
});

describe('hashGatewayKey', () => {
  const pepper = randomBytes(32);

  it('is the hex HMAC-SHA256 under the pepper', () => {
    const key = generateGatewayKey();
    const hash = hashGatewayKey(pepper, key);
    expect(hash).toBe(createHmac('sha256', pepper).update(key).digest('hex'));
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain(key.slice(3, 20));
    expect(hashGatewayKey(randomBytes(32), key)).not.toBe(hash);
  });

  it('refuses a short pepper', () => {
    try {
      hashGatewayKey(Buffer.alloc(8), generateGatewayKey());
      expect.unreachable();
    } catch (error) {
      expect(isAppError(error) && error.code).toBe('invalid_input');
    }
  });
});

describe('hints', () => {
  it('shows the prefix and the last four (checksum) characters only', () => {
    const key = generateGatewayKey();
    expect(gatewayKeyHint(key)).toBe(`tg_…${key.slice(-4)}`);
    const token = newAdminToken();
    expect(adminTokenHint(token)).toBe(`tga_…${token.slice(-4)}`);
  });

  it('refuses to make a hint of something that is not a key', () => {
    expect(() => gatewayKeyHint('tg_abc')).toThrow();
    expect(() => gatewayKeyHint(newAdminToken())).toThrow();
  });
});

describe('safeEqualHex', () => {
  it('compares hex values', () => {
    const a = randomBytes(32).toString('hex');
    expect(safeEqualHex(a, a)).toBe(true);
    expect(safeEqualHex(a, a.toUpperCase())).toBe(true);
    expect(safeEqualHex(a, `${a.slice(0, -1)}${a.endsWith('0') ? '1' : '0'}`)).toBe(false);
    expect(safeEqualHex(a, a.slice(0, -2))).toBe(false);
  });

  it('is false for empty, odd-length or non-hex input', () => {
    expect(safeEqualHex('', '')).toBe(false);
    expect(safeEqualHex('abc', 'abc')).toBe(false);
    expect(safeEqualHex('zz', 'yy')).toBe(false);
    expect(safeEqualHex('abzz', 'abyy')).toBe(false);
    expect(safeEqualHex('ab\u0000\u0000', 'ab\u0000\u0000')).toBe(false);
  });
});
