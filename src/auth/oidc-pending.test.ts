// The pending sign-in cookie: opens only under the same pepper, untampered, within ten minutes.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openPending, PENDING_TTL_MS, pendingCookie, pendingCookieOf, sealPending } from './oidc-pending.js';

const pepper = randomBytes(32);
const t0 = 1_700_000_000_000;
// Values long enough that random base64 cannot contain them by chance (two letters did, 1 run in ~30).
const pending = {
  state: 'state-7b1e2c9d4f',
  nonce: 'nonce-5a8c3e1b6d',
  verifier: 'verifier-2f9d7a4c1e',
  createdAt: t0,
};

describe('pending sign-in cookie', () => {
  it('round-trips within its lifetime and hides its content', () => {
    const sealed = sealPending(pepper, pending);
    for (const secret of [pending.state, pending.nonce, pending.verifier]) {
      expect(sealed).not.toContain(secret);
      expect(sealed).not.toContain(Buffer.from(secret).toString('base64url').slice(0, 12));
    }
    expect(openPending(pepper, sealed, t0 + PENDING_TTL_MS - 1)).toEqual(pending);
  });

  it('refuses an expired, tampered or foreign cookie', () => {
    const sealed = sealPending(pepper, pending);
    expect(openPending(pepper, sealed, t0 + PENDING_TTL_MS + 1)).toBeNull();
    const [iv, tag, body = ''] = sealed.split('.');
    const flipped = `${body.slice(0, -2)}${body.endsWith('AA') ? 'BB' : 'AA'}`;
    expect(openPending(pepper, `${iv}.${tag}.${flipped}`, t0)).toBeNull();
    expect(openPending(randomBytes(32), sealed, t0)).toBeNull();
    expect(openPending(pepper, 'garbage', t0)).toBeNull();
  });

  it('is HttpOnly, SameSite=Lax, scoped to /auth/oidc, Secure under https', () => {
    expect(pendingCookie({ secure: false }, 'v', PENDING_TTL_MS)).toBe(
      'tollgate_oidc=v; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=600',
    );
    expect(pendingCookie({ secure: true }, 'v', 0)).toBe(
      '__Secure-tollgate_oidc=v; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=0; Secure',
    );
    expect(pendingCookieOf({ secure: false }, 'a=b; tollgate_oidc=xyz')).toBe('xyz');
  });
});
