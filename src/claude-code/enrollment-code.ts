// One-time enrollment codes: `ENR-XXXX-XXXX-XXXX-XXXX`, 16 Crockford base32 characters = 80 random bits.
// The shape is deliberately unlike a `tg_`/`sk-ant-` secret so the argv guard accepts `--code CODE`:
// a code is short-lived (15 minutes) and single-use, which is what makes passing it on argv acceptable.
import { randomBytes } from 'node:crypto';
import { hashGatewayKey } from '../crypto/gateway-key.js';

/** Crockford's base32: no I, L, O or U, so codes read aloud or typed by hand survive. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CHARS = 16;
const GROUP = 4;
const PREFIX = 'ENR';

export const ENROLLMENT_TTL_MS = 15 * 60 * 1000;

/** A new code; 10 random bytes are exactly 16 base32 characters, so every character is uniform. */
export function generateEnrollmentCode(): string {
  let bits = BigInt(`0x${randomBytes((CHARS * 5) / 8).toString('hex')}`);
  let body = '';
  for (let i = 0; i < CHARS; i++) {
    body = ALPHABET[Number(bits & 31n)] + body;
    bits >>= 5n;
  }
  return format(body);
}

function format(body: string): string {
  const groups = body.match(new RegExp(`.{${GROUP}}`, 'g')) ?? [];
  return [PREFIX, ...groups].join('-');
}

/**
 * The canonical form of a typed code, or null when it cannot be one: case, spaces and dashes are
 * forgiven, and the letters Crockford maps (O → 0, I/L → 1) are read as digits.
 */
export function normalizeEnrollmentCode(text: string): string | null {
  // Length first, so arbitrary client input costs O(1) before any regex.
  if (text.length > 64) return null;
  let body = text.toUpperCase().replace(/[\s-]/g, '');
  if (body.length === PREFIX.length + CHARS && body.startsWith(PREFIX)) body = body.slice(PREFIX.length);
  body = body.replace(/O/g, '0').replace(/[IL]/g, '1');
  if (body.length !== CHARS || ![...body].every((c) => ALPHABET.includes(c))) return null;
  return format(body);
}

/** What is stored: an HMAC of the canonical code under the installation's pepper, domain-separated from keys. */
export function hashEnrollmentCode(pepper: Buffer, canonical: string): string {
  return hashGatewayKey(pepper, `enrollment-code:${canonical}`);
}
