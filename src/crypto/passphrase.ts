// Passphrase-derived keys (scrypt) for encrypted export bundles.

import { scrypt } from 'node:crypto';
import { AppError } from '../lib/errors.js';

export interface ScryptParams {
  /** CPU/memory cost; a power of two. */
  readonly N: number;
  /** Block size. */
  readonly r: number;
  /** Parallelism. */
  readonly p: number;
}

// 2^17 × 8 × 128 bytes = 128 MiB and roughly a few hundred ms per guess: the cost makes offline
// guessing of an exported bundle's passphrase expensive. Bundles should record the params they used.
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = Object.freeze({ N: 2 ** 17, r: 8, p: 1 });

export const DERIVED_KEY_BYTES = 32;
export const MIN_SALT_BYTES = 16;
// Upper bounds so parameters read from a bundle file cannot make us allocate unbounded memory.
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;

function checkParams({ N, r, p }: ScryptParams): void {
  const powerOfTwo = Number.isSafeInteger(N) && N > 1 && (N & (N - 1)) === 0;
  const ok =
    powerOfTwo && N <= MAX_N && Number.isSafeInteger(r) && r >= 1 && r <= MAX_R && Number.isSafeInteger(p);
  if (!ok || p < 1 || p > MAX_P) {
    throw new AppError(
      'invalid_input',
      `scrypt parameters out of range (N a power of two up to 2^20, r 1..${MAX_R}, p 1..${MAX_P})`,
    );
  }
}

/** Derives a 32-byte key from a passphrase with scrypt (default N=2^17, r=8, p=1). */
export function deriveFromPassphrase(
  passphrase: string,
  salt: Buffer,
  params: ScryptParams = DEFAULT_SCRYPT_PARAMS,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (passphrase === '') throw new AppError('invalid_input', 'the passphrase must not be empty');
    if (salt.length < MIN_SALT_BYTES) {
      throw new AppError('invalid_input', `the salt must be at least ${MIN_SALT_BYTES} bytes`);
    }
    checkParams(params);
    const { N, r, p } = params;
    // scrypt needs about 128·r·(N + p + 2) bytes; Node's default cap (32 MiB) is below the default
    // cost, so the cap is set from the parameters, with 1 MiB of slack.
    const maxmem = 128 * r * (N + p + 2) + 1024 * 1024;
    // NFC so the same passphrase typed on different systems gives the same key.
    scrypt(passphrase.normalize('NFC'), salt, DERIVED_KEY_BYTES, { N, r, p, maxmem }, (error, key) => {
      if (error) reject(new AppError('internal', 'passphrase key derivation failed', {}, { cause: error }));
      else resolve(key);
    });
  });
}
