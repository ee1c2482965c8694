import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AppError, isAppError } from '../lib/errors.js';
import { open, rewrap, type SealedSecret, seal } from './envelope.js';
import { generateMasterKeyText, parseMasterKey } from './master-key.js';

const master = parseMasterKey(generateMasterKeyText(), 'test', 1);
const other = parseMasterKey(generateMasterKeyText(), 'test', 1);
const next = parseMasterKey(generateMasterKeyText(), 'test', 2);

const A = 'credentials:cred_aaaaaaaaaaaaaaaaaaaaaa';
const B = 'credentials:cred_bbbbbbbbbbbbbbbbbbbbbb';

function openError(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    if (isAppError(error)) return error;
    throw error;
  }
  throw new Error('expected the secret not to open');
}

function copy(sealed: SealedSecret): SealedSecret {
  return {
    ciphertext: Buffer.from(sealed.ciphertext),
    wrappedKey: Buffer.from(sealed.wrappedKey),
    keyVersion: sealed.keyVersion,
  };
}

describe('seal / open', () => {
  it('round-trips, including empty and large plaintexts', () => {
    for (const text of ['sk-ant-api03-secret', '', 'x'.repeat(100_000)]) {
      const sealed = seal(master, A, Buffer.from(text));
      expect(open(master, A, sealed).toString()).toBe(text);
      expect(sealed.keyVersion).toBe(1);
      expect(sealed.ciphertext[0]).toBe(1);
      expect(sealed.wrappedKey).toHaveLength(1 + 12 + 16 + 32);
      expect(sealed.ciphertext).toHaveLength(1 + 12 + 16 + text.length);
    }
  });

  it('uses a fresh data key and IV every time', () => {
    const one = seal(master, A, Buffer.from('same'));
    const two = seal(master, A, Buffer.from('same'));
    expect(one.ciphertext.equals(two.ciphertext)).toBe(false);
    expect(one.wrappedKey.equals(two.wrappedKey)).toBe(false);
  });

  it('never contains the plaintext in any common encoding', () => {
    const secret = 'sk-ant-api03-CANARY-0123456789abcdef';
    const sealed = seal(master, A, Buffer.from(secret));
    const blobs = Buffer.concat([sealed.ciphertext, sealed.wrappedKey]);
    for (const needle of [
      secret,
      Buffer.from(secret).toString('base64'),
      Buffer.from(secret).toString('hex'),
    ]) {
      expect(blobs.includes(needle)).toBe(false);
      expect(blobs.toString('latin1').includes(needle)).toBe(false);
      expect(blobs.toString('base64').includes(needle)).toBe(false);
      expect(blobs.toString('hex').includes(needle)).toBe(false);
    }
  });

  it('fails for both records when ciphertexts are swapped', () => {
    const a = seal(master, A, Buffer.from('secret A'));
    const b = seal(master, B, Buffer.from('secret B'));
    const error = openError(() => open(master, A, { ...a, ciphertext: b.ciphertext }));
    expect(error.code).toBe('decryption_failed');
    expect(error.message).toBe(`secret ${A} could not be decrypted (wrong master key or tampered record)`);
    expect(openError(() => open(master, B, { ...b, ciphertext: a.ciphertext })).code).toBe(
      'decryption_failed',
    );
  });

  it('fails when wrapped keys are swapped or the whole record is moved', () => {
    const a = seal(master, A, Buffer.from('secret A'));
    const b = seal(master, B, Buffer.from('secret B'));
    expect(openError(() => open(master, A, { ...a, wrappedKey: b.wrappedKey })).code).toBe(
      'decryption_failed',
    );
    expect(openError(() => open(master, B, { ...b, wrappedKey: a.wrappedKey })).code).toBe(
      'decryption_failed',
    );
    expect(openError(() => open(master, B, a)).code).toBe('decryption_failed');
  });

  it('fails under a wrong master key with the same version', () => {
    const sealed = seal(master, A, Buffer.from('secret'));
    expect(openError(() => open(other, A, sealed)).code).toBe('decryption_failed');
  });

  it('names the needed version when the key version differs', () => {
    const sealed = seal(master, A, Buffer.from('secret'));
    const error = openError(() => open(next, A, sealed));
    expect(error.code).toBe('decryption_failed');
    expect(error.message).toContain('needs master key version 1');
    // Relabelling the version does not help either: the version is authenticated.
    expect(openError(() => open(next, A, { ...sealed, keyVersion: 2 })).code).toBe('decryption_failed');
  });

  it('fails when any single byte of either blob is changed', () => {
    const sealed = seal(master, A, Buffer.from('a credential worth protecting'));
    fc.assert(
      fc.property(fc.boolean(), fc.nat(), fc.integer({ min: 1, max: 255 }), (inWrapped, rawIndex, delta) => {
        const tampered = copy(sealed);
        const blob = inWrapped ? tampered.wrappedKey : tampered.ciphertext;
        const index = rawIndex % blob.length;
        blob[index] = ((blob[index] ?? 0) + delta) & 0xff;
        expect(openError(() => open(master, A, tampered)).code).toBe('decryption_failed');
      }),
      { numRuns: 500 },
    );
  });

  it('fails on truncated, extended or empty blobs', () => {
    const sealed = seal(master, A, Buffer.from('secret'));
    const cases: SealedSecret[] = [
      { ...sealed, ciphertext: sealed.ciphertext.subarray(0, -1) },
      { ...sealed, ciphertext: Buffer.concat([sealed.ciphertext, Buffer.from([0])]) },
      { ...sealed, ciphertext: Buffer.alloc(0) },
      { ...sealed, wrappedKey: sealed.wrappedKey.subarray(0, 20) },
      { ...sealed, wrappedKey: Buffer.alloc(0) },
    ];
    for (const tampered of cases) {
      expect(openError(() => open(master, A, tampered)).code).toBe('decryption_failed');
    }
  });

  it('refuses an empty binding', () => {
    expect(openError(() => seal(master, '', Buffer.from('x'))).code).toBe('invalid_input');
  });
});

describe('rewrap', () => {
  it('moves a secret to the new master key without touching the ciphertext', () => {
    const sealed = seal(master, A, Buffer.from('rotate me'));
    const rotated = rewrap(master, next, A, sealed);
    expect(rotated.keyVersion).toBe(2);
    expect(rotated.ciphertext.equals(sealed.ciphertext)).toBe(true);
    expect(rotated.wrappedKey.equals(sealed.wrappedKey)).toBe(false);
    expect(open(next, A, rotated).toString()).toBe('rotate me');
    expect(openError(() => open(master, A, rotated)).code).toBe('decryption_failed');
    // The old record still opens with the old key until it is replaced.
    expect(open(master, A, sealed).toString()).toBe('rotate me');
  });

  it('refuses a wrong old key, another binding, or an unchanged version', () => {
    const sealed = seal(master, A, Buffer.from('rotate me'));
    expect(openError(() => rewrap(other, next, A, sealed)).code).toBe('decryption_failed');
    expect(openError(() => rewrap(master, next, B, sealed)).code).toBe('decryption_failed');
    expect(openError(() => rewrap(master, other, A, sealed)).code).toBe('invalid_input');
  });
});
