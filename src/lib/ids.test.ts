import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isAppError } from './errors.js';
import { BASE62_ALPHABET, base62Encode, base62LengthFor, ID_PREFIXES, isIdOf, newId } from './ids.js';

function base62Decode(text: string): bigint {
  let value = 0n;
  for (const ch of text) value = value * 62n + BigInt(BASE62_ALPHABET.indexOf(ch));
  return value;
}

describe('base62Encode', () => {
  it('encodes known values with left padding', () => {
    expect(base62Encode(Buffer.from([0]), 2)).toBe('00');
    expect(base62Encode(Buffer.from([61]), 1)).toBe('z');
    expect(base62Encode(Buffer.from([62]), 3)).toBe('010');
    expect(base62Encode(Buffer.alloc(0), 4)).toBe('0000');
    expect(base62Encode(Buffer.from([0xff, 0xff, 0xff, 0xff]), 6)).toBe('4gfFC3');
  });

  it('uses the shortest length that fits by default', () => {
    expect(base62LengthFor(32)).toBe(43);
    expect(base62LengthFor(16)).toBe(22);
    expect(base62LengthFor(4)).toBe(6);
    expect(base62Encode(Buffer.alloc(32, 0xff))).toHaveLength(43);
  });

  it('refuses a length that is too short', () => {
    try {
      base62Encode(Buffer.from([62]), 1);
      expect.unreachable();
    } catch (error) {
      expect(isAppError(error) && error.code).toBe('invalid_input');
    }
  });

  it('round-trips any bytes at the default fixed length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const text = base62Encode(bytes);
        expect(text).toHaveLength(base62LengthFor(bytes.length));
        expect(/^[0-9A-Za-z]*$/.test(text)).toBe(true);
        const expected = bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
        expect(base62Decode(text)).toBe(expected);
      }),
    );
  });
});

describe('newId', () => {
  it('has the prefix and 22 base62 characters', () => {
    for (const prefix of ID_PREFIXES) {
      const id = newId(prefix);
      expect(id).toMatch(new RegExp(`^${prefix}_[0-9A-Za-z]{22}$`));
      expect(isIdOf(prefix, id)).toBe(true);
    }
  });

  it('does not repeat', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newId('req')));
    expect(ids.size).toBe(10_000);
  });
});

describe('isIdOf', () => {
  it('rejects other prefixes, lengths and characters', () => {
    const id = newId('usr');
    expect(isIdOf('key', id)).toBe(false);
    expect(isIdOf('usr', `${id}x`)).toBe(false);
    expect(isIdOf('usr', id.slice(0, -1))).toBe(false);
    expect(isIdOf('usr', `${id.slice(0, -1)}-`)).toBe(false);
    expect(isIdOf('usr', `${id.slice(0, -1)}\u0000`)).toBe(false);
    expect(isIdOf('usr', 42)).toBe(false);
    expect(isIdOf('usr', "usr_' OR 1=1 --------------")).toBe(false);
  });
});
