import { randomBytes, scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isAppError } from '../lib/errors.js';
import { DEFAULT_SCRYPT_PARAMS, deriveFromPassphrase } from './passphrase.js';

const small = { N: 2 ** 10, r: 8, p: 1 };

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return isAppError(error) ? error.code : 'not an AppError';
  }
  return 'resolved';
}

describe('deriveFromPassphrase', () => {
  it('matches scrypt and is deterministic per passphrase and salt', async () => {
    const salt = randomBytes(16);
    const key = await deriveFromPassphrase('correct horse battery staple', salt, small);
    expect(key).toHaveLength(32);
    expect(key.equals(scryptSync('correct horse battery staple', salt, 32, small))).toBe(true);
    expect((await deriveFromPassphrase('correct horse battery staple', salt, small)).equals(key)).toBe(true);
    expect((await deriveFromPassphrase('correct horse battery stapler', salt, small)).equals(key)).toBe(
      false,
    );
    expect(
      (await deriveFromPassphrase('correct horse battery staple', randomBytes(16), small)).equals(key),
    ).toBe(false);
  });

  it('normalises the passphrase to NFC', async () => {
    const salt = randomBytes(16);
    const composed = await deriveFromPassphrase('caf\u00e9', salt, small);
    const decomposed = await deriveFromPassphrase('cafe\u0301', salt, small);
    expect(composed.equals(decomposed)).toBe(true);
  });

  it('has the documented defaults, which fit in the memory cap', async () => {
    expect(DEFAULT_SCRYPT_PARAMS).toEqual({ N: 2 ** 17, r: 8, p: 1 });
    const key = await deriveFromPassphrase('pass', randomBytes(16));
    expect(key).toHaveLength(32);
  });

  it('refuses empty passphrases, short salts and bad parameters', async () => {
    const salt = randomBytes(16);
    expect(await codeOf(deriveFromPassphrase('', salt, small))).toBe('invalid_input');
    expect(await codeOf(deriveFromPassphrase('x', randomBytes(8), small))).toBe('invalid_input');
    for (const params of [
      { N: 1000, r: 8, p: 1 },
      { N: 1, r: 8, p: 1 },
      { N: 2 ** 30, r: 8, p: 1 },
      { N: 1024, r: 0, p: 1 },
      { N: 1024, r: 8, p: 0 },
      { N: 1024, r: 8.5, p: 1 },
      { N: Number.NaN, r: 8, p: 1 },
    ]) {
      expect(await codeOf(deriveFromPassphrase('x', salt, params))).toBe('invalid_input');
    }
  });
});
