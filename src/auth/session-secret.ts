// What a session id alone can derive: its CSRF token, and the key that seals the identity provider's
// refresh token kept with it. Only the browser holds the id (the database keeps a keyed hash), so a
// stolen database opens neither sessions nor refresh tokens.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The CSRF token of a session: a keyed hash of its id, so it needs no storage of its own. */
export function csrfTokenFor(pepper: Buffer, sessionToken: string): string {
  return createHmac('sha256', pepper).update(`csrf\0${sessionToken}`).digest('base64url');
}

/** Constant-time check of a presented CSRF token. */
export function csrfMatches(pepper: Buffer, sessionToken: string, presented: string): boolean {
  const expected = Buffer.from(csrfTokenFor(pepper, sessionToken));
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function sealingKey(sessionToken: string): Buffer {
  return createHmac('sha256', sessionToken).update('tollgate oidc refresh v1').digest();
}

/** AES-256-GCM under a key derived from the session id, bound to the session's row id. */
export function sealWithSession(sessionToken: string, sessionId: string, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(sessionToken), iv);
  cipher.setAAD(Buffer.from(sessionId));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [iv, cipher.getAuthTag(), body].map((b) => b.toString('base64url')).join('.');
}

/** The sealed text, or null when it does not open under this session (tampered or swapped). */
export function openWithSession(sessionToken: string, sessionId: string, sealed: string): string | null {
  const [iv, tag, body] = sealed.split('.').map((part) => Buffer.from(part, 'base64url'));
  if (!iv || !tag || !body) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealingKey(sessionToken), iv);
    decipher.setAAD(Buffer.from(sessionId));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}
