// Key extraction and classification, mimicking how Anthropic separates inference and admin keys.

import type { IncomingHttpHeaders } from 'node:http';

export type KeyKind = 'inference' | 'admin';

export interface PresentedKey {
  key: string | null;
  via?: 'x-api-key' | 'bearer' | 'both';
}

const BEARER = /^Bearer\s+(.+)$/i;

/** Reads `x-api-key` and `Authorization: Bearer`; x-api-key wins when both are present and differ. */
export function presentedKey(headers: IncomingHttpHeaders): PresentedKey {
  const header = headers['x-api-key'];
  const apiKey = typeof header === 'string' && header !== '' ? header : null;
  const bearer = BEARER.exec(headers.authorization ?? '')?.[1]?.trim() || null;
  if (apiKey && bearer) return { key: apiKey, via: 'both' };
  if (apiKey) return { key: apiKey, via: 'x-api-key' };
  if (bearer) return { key: bearer, via: 'bearer' };
  return { key: null };
}

export interface KeyPolicy {
  kindOf(key: string): KeyKind | null;
  revoke(key: string): void;
  clearRevocations(): void;
}

export function createKeyPolicy(
  validKeys: string[],
  adminKeys: string[],
  acceptTestKeys: boolean,
): KeyPolicy {
  const inference = new Set(validKeys);
  const admin = new Set(adminKeys);
  const revoked = new Set<string>();
  return {
    kindOf(key) {
      // Revocation is checked first: a revoked key is unknown whatever its prefix.
      if (revoked.has(key)) return null;
      if (inference.has(key) || (acceptTestKeys && key.startsWith('sk-ant-api03-test'))) return 'inference';
      if (admin.has(key) || (acceptTestKeys && key.startsWith('sk-ant-admin01-test'))) return 'admin';
      return null;
    },
    revoke(key) {
      revoked.add(key);
    },
    clearRevocations() {
      revoked.clear();
    },
  };
}

export type AuthRefusal = { status: 401 | 403; message: string };

/** Null when the key may use a route needing `needed`; an admin key on inference routes is 401, the reverse 403. */
export function authorize(policy: KeyPolicy, key: string | null, needed: KeyKind): AuthRefusal | null {
  if (key === null) return { status: 401, message: 'x-api-key header is required' };
  const kind = policy.kindOf(key);
  if (kind === needed) return null;
  if (kind === 'inference' && needed === 'admin') {
    return { status: 403, message: 'This API key is not authorized to use the Admin API' };
  }
  return { status: 401, message: 'invalid x-api-key' };
}
