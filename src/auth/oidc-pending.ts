// A single sign-on in progress (state, nonce, PKCE verifier, start time) lives in a short-lived cookie
// sealed with AES-256-GCM under a key derived from the installation pepper, so any instance can finish
// a sign-in another started, and the browser can neither read nor forge it.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { CookieSettings } from './cookies.js';

export interface PendingSignIn {
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
  readonly createdAt: number;
}

/** How long a sign-in may stay at the identity provider. */
export const PENDING_TTL_MS = 10 * 60_000;
const AAD = Buffer.from('tollgate oidc pending v1');

function pendingKey(pepper: Buffer): Buffer {
  return createHmac('sha256', pepper).update('tollgate oidc pending cookie v1').digest();
}

export function sealPending(pepper: Buffer, pending: PendingSignIn): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', pendingKey(pepper), iv);
  cipher.setAAD(AAD);
  const body = Buffer.concat([cipher.update(JSON.stringify(pending), 'utf8'), cipher.final()]);
  return [iv, cipher.getAuthTag(), body].map((b) => b.toString('base64url')).join('.');
}

/** The pending sign-in, or null when the cookie is missing, forged, or older than PENDING_TTL_MS. */
export function openPending(pepper: Buffer, sealed: string, now: number): PendingSignIn | null {
  const [iv, tag, body] = sealed.split('.').map((part) => Buffer.from(part, 'base64url'));
  if (!iv || !tag || !body || iv.length !== 12 || tag.length !== 16) return null;
  let value: unknown;
  try {
    const decipher = createDecipheriv('aes-256-gcm', pendingKey(pepper), iv);
    decipher.setAAD(AAD);
    decipher.setAuthTag(tag);
    value = JSON.parse(Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8'));
  } catch {
    return null;
  }
  if (!isPending(value)) return null;
  // A start time in the future is as suspect as one too old.
  if (value.createdAt > now + 60_000 || now - value.createdAt > PENDING_TTL_MS) return null;
  return value;
}

function isPending(value: unknown): value is PendingSignIn {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.state === 'string' &&
    typeof v.nonce === 'string' &&
    typeof v.verifier === 'string' &&
    typeof v.createdAt === 'number'
  );
}

export function pendingCookieName(settings: CookieSettings): string {
  return settings.secure ? '__Secure-tollgate_oidc' : 'tollgate_oidc';
}

/**
 * `Set-Cookie` for the pending sign-in: SameSite=Lax so the top-level redirect back from the provider
 * carries it; Path=/auth/oidc so no other request does. maxAgeMs 0 clears it.
 */
export function pendingCookie(settings: CookieSettings, value: string, maxAgeMs: number): string {
  const parts = [
    `${pendingCookieName(settings)}=${value}`,
    'Path=/auth/oidc',
    'HttpOnly',
    'SameSite=Lax',
    `Max-Age=${Math.max(0, Math.floor(maxAgeMs / 1000))}`,
  ];
  if (settings.secure) parts.push('Secure');
  return parts.join('; ');
}

/** The pending cookie's value in a `Cookie` header, or ''. */
export function pendingCookieOf(settings: CookieSettings, header: string | undefined): string {
  if (typeof header !== 'string' || header.length > 16 * 1024) return '';
  const name = `${pendingCookieName(settings)}=`;
  for (const part of header.split(';')) {
    const trimmed = part.trim();
    if (trimmed.startsWith(name)) return trimmed.slice(name.length, name.length + 4096);
  }
  return '';
}
