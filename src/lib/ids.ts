// Prefixed random identifiers (`usr_…`, `key_…`) and the base62 encoding shared with gateway keys.

import { randomBytes } from 'node:crypto';
import { AppError } from './errors.js';

export const ID_PREFIXES = [
  'org',
  'tm',
  'usr',
  'cred',
  'key',
  'req',
  'aud',
  'tok',
  'prf',
  'atk',
  'ses',
  'inv',
  'alr',
  'ret',
] as const;
export type IdPrefix = (typeof ID_PREFIXES)[number];

export const BASE62_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Number of random characters after the `prefix_` of an id. */
export const ID_RANDOM_LENGTH = 22;

// 16 random bytes = 128 bits; 62^22 ≈ 2^131 > 2^128, so 22 characters always hold them.
const ID_RANDOM_BYTES = 16;
const LOG2_62 = Math.log2(62);

/** Shortest base62 length that can hold every value of `byteLength` bytes. */
export function base62LengthFor(byteLength: number): number {
  return Math.ceil((byteLength * 8) / LOG2_62);
}

/** Encodes bytes as a big-endian base62 number, left-padded with '0' to a fixed length. */
export function base62Encode(buf: Uint8Array, length: number = base62LengthFor(buf.length)): string {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new AppError('invalid_input', 'base62 length must be a non-negative integer');
  }
  // The whole buffer is treated as one integer, so random bytes map to uniformly distributed
  // strings without the modulo bias of "byte % 62" per character.
  let value = buf.length === 0 ? 0n : BigInt(`0x${Buffer.from(buf).toString('hex')}`);
  const chars: string[] = [];
  while (value > 0n) {
    chars.push(BASE62_ALPHABET[Number(value % 62n)] ?? '0');
    value /= 62n;
  }
  if (chars.length > length) {
    throw new AppError('invalid_input', `value does not fit in ${length} base62 characters`);
  }
  return chars.reverse().join('').padStart(length, '0');
}

/** True if every character of `text` is in the base62 alphabet (empty string included). */
export function isBase62(text: string): boolean {
  return /^[0-9A-Za-z]*$/.test(text);
}

/** A new random id such as `usr_3kTMd9Zq0pB7vXy2LcN1aQ`. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${base62Encode(randomBytes(ID_RANDOM_BYTES), ID_RANDOM_LENGTH)}`;
}

/** True if `value` has the shape of an id with the given prefix (for validating route parameters). */
export function isIdOf(prefix: IdPrefix, value: unknown): value is string {
  // Length is checked before the regex so arbitrary client input costs O(1).
  return (
    typeof value === 'string' &&
    value.length === prefix.length + 1 + ID_RANDOM_LENGTH &&
    value.startsWith(`${prefix}_`) &&
    isBase62(value.slice(prefix.length + 1))
  );
}

/**
 * A cheap generator of unique ids for hot paths (request ids): a random per-generator prefix plus a
 * counter, so no randomness is drawn per id. Not secret and not unguessable — never use for tokens.
 */
export function sequentialIds(prefix: IdPrefix): () => string {
  const base = base62Encode(randomBytes(8), 11);
  let counter = 0;
  return () => `${prefix}_${base}${(counter++).toString(36).padStart(6, '0')}`;
}
