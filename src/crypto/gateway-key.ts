// Gateway keys (`tg_…`) and admin tokens (`tga_…`): format, checksum, keyed hash, hint.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { AppError } from '../lib/errors.js';
import { base62Encode, base62LengthFor } from '../lib/ids.js';

export const GATEWAY_KEY_PREFIX = 'tg_';
export const ADMIN_TOKEN_PREFIX = 'tga_';
/** Dashboard session ids (the cookie's value). */
export const SESSION_TOKEN_PREFIX = 'tgs_';
/** Single-use invite (login-link) tokens. */
export const INVITE_TOKEN_PREFIX = 'tgi_';

const RANDOM_BYTES = 32; // 256 bits of randomness, as the security promises require
const RANDOM_CHARS = base62LengthFor(RANDOM_BYTES); // 43
const CHECKSUM_CHARS = 6; // 62^6 > 2^32, so any CRC32 fits
const BODY = /^[0-9A-Za-z]+$/;

export const GATEWAY_KEY_LENGTH = GATEWAY_KEY_PREFIX.length + RANDOM_CHARS + CHECKSUM_CHARS; // 52
export const ADMIN_TOKEN_LENGTH = ADMIN_TOKEN_PREFIX.length + RANDOM_CHARS + CHECKSUM_CHARS; // 53

/** Smallest pepper accepted by hashGatewayKey. */
export const MIN_PEPPER_BYTES = 32;

// The checksum is not a secret and not a MAC: it only lets typos and random guesses be turned
// away without a database lookup. It covers the prefix, so a `tg_` body relabelled as `tga_` fails.
function checksum(prefixAndRandom: string): string {
  const crc = crc32(Buffer.from(prefixAndRandom, 'latin1'));
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc >>> 0);
  return base62Encode(bytes, CHECKSUM_CHARS);
}

function generate(prefix: string): string {
  const head = prefix + base62Encode(randomBytes(RANDOM_BYTES), RANDOM_CHARS);
  return head + checksum(head);
}

function hasShape(candidate: unknown, prefix: string, length: number): boolean {
  // Order matters for cost: type and exact length first, so a 64 KiB header costs O(1); then the
  // prefix and a regex over a fixed-size string; the CRC (over ~50 bytes) runs last.
  if (typeof candidate !== 'string' || candidate.length !== length) return false;
  if (!candidate.startsWith(prefix)) return false;
  const body = candidate.slice(prefix.length);
  if (!BODY.test(body)) return false; // ASCII only from here, so latin1 encoding is exact
  const cut = length - CHECKSUM_CHARS;
  // A plain comparison is fine: the checksum is computed from the candidate itself and hides nothing.
  return checksum(candidate.slice(0, cut)) === candidate.slice(cut);
}

/** A new gateway key: `tg_` + 43 base62 chars of 256 random bits + 6 chars of CRC32. */
export function generateGatewayKey(): string {
  return generate(GATEWAY_KEY_PREFIX);
}

/** Cheap format + checksum test run before any database lookup; never throws. */
export function hasValidGatewayKeyShape(candidate: string): boolean {
  return hasShape(candidate, GATEWAY_KEY_PREFIX, GATEWAY_KEY_LENGTH);
}

/** A new admin token; the distinct prefix keeps it from ever passing as a gateway key, and back. */
export function newAdminToken(): string {
  return generate(ADMIN_TOKEN_PREFIX);
}

/** Cheap format + checksum test for admin tokens; never throws. */
export function hasValidAdminTokenShape(candidate: string): boolean {
  return hasShape(candidate, ADMIN_TOKEN_PREFIX, ADMIN_TOKEN_LENGTH);
}

/** The value stored for a key or token: hex HMAC-SHA256 under the server-side pepper. */
export function hashGatewayKey(pepper: Buffer, key: string): string {
  // The pepper lives outside the database, so a stolen database alone cannot test guesses offline.
  if (pepper.length < MIN_PEPPER_BYTES) {
    throw new AppError('invalid_input', `the gateway key pepper must be at least ${MIN_PEPPER_BYTES} bytes`);
  }
  return createHmac('sha256', pepper).update(key, 'utf8').digest('hex');
}

function hint(key: string, prefix: string, length: number): string {
  if (!hasShape(key, prefix, length)) {
    throw new AppError('invalid_input', `not a ${prefix}… value; cannot make a hint`);
  }
  // The last 4 characters are checksum characters: they are a function of the random part
  // (about 24 bits of its CRC32), never random characters themselves, so showing them leaves
  // all 256 random bits unrevealed and at most 24 bits of search space narrowed.
  return `${prefix}…${key.slice(-4)}`;
}

/** A new secret of the shape `prefix` + 256 random bits + checksum (sessions, invites). */
export function newPrefixedSecret(prefix: typeof SESSION_TOKEN_PREFIX | typeof INVITE_TOKEN_PREFIX): string {
  return generate(prefix);
}

/** Cheap format + checksum test for a secret made by newPrefixedSecret; never throws. */
export function hasPrefixedSecretShape(
  candidate: string,
  prefix: typeof SESSION_TOKEN_PREFIX | typeof INVITE_TOKEN_PREFIX,
): boolean {
  return hasShape(candidate, prefix, prefix.length + RANDOM_CHARS + CHECKSUM_CHARS);
}

/** Non-secret label for a gateway key, shown in lists: `tg_…` + last 4 chars. */
export function gatewayKeyHint(key: string): string {
  return hint(key, GATEWAY_KEY_PREFIX, GATEWAY_KEY_LENGTH);
}

/** Non-secret label for an admin token: `tga_…` + last 4 chars. */
export function adminTokenHint(token: string): string {
  return hint(token, ADMIN_TOKEN_PREFIX, ADMIN_TOKEN_LENGTH);
}

/** Constant-time equality of two hex strings (case-insensitive); false for non-hex or empty input. */
export function safeEqualHex(a: string, b: string): boolean {
  // Lengths are public (hash sizes are fixed), so an early length check leaks nothing secret.
  if (a.length !== b.length || a.length === 0 || a.length % 2 !== 0) return false;
  // Buffer.from(…, 'hex') stops at the first bad character, which would make 'zz' equal 'yy';
  // validating first rules that out.
  if (!/^[0-9a-fA-F]+$/.test(a) || !/^[0-9a-fA-F]+$/.test(b)) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}
