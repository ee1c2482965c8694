import { describe, expect, it } from 'vitest';
import { CREDENTIAL_ATTEMPTS, credentialAttempt } from './throttle.js';

describe('credentialAttempt', () => {
  it('allows 5 attempts per user per window, then gives the wait in seconds', () => {
    const shared = {};
    const now = 1_000_000;
    for (let i = 0; i < CREDENTIAL_ATTEMPTS.perUser; i++)
      expect(credentialAttempt(shared, 'u1', 'ip1', now)).toBeNull();
    expect(credentialAttempt(shared, 'u1', 'ip2', now + 1_000)).toEqual({ waitS: 599, first: true });
    // Later refusals of the window are not the first (they are not audited one by one).
    expect(credentialAttempt(shared, 'u1', 'ip2', now + 2_000)).toEqual({ waitS: 598, first: false });
    // Another user is not held back; the window ends and the user may try again.
    expect(credentialAttempt(shared, 'u2', 'ip3', now)).toBeNull();
    expect(credentialAttempt(shared, 'u1', 'ip1', now + CREDENTIAL_ATTEMPTS.windowMs)).toBeNull();
  });

  it('allows 20 attempts per address across users, then refuses a fresh user from it', () => {
    const shared = {};
    for (let i = 0; i < CREDENTIAL_ATTEMPTS.perIp; i++)
      expect(credentialAttempt(shared, `u${i}`, 'ip', 0)).toBeNull();
    expect(credentialAttempt(shared, 'fresh', 'ip', 0)).not.toBeNull();
    expect(credentialAttempt(shared, 'fresh2', 'other-ip', 0)).toBeNull();
  });

  it('keeps counts per server (shared state object)', () => {
    const a = {};
    const b = {};
    for (let i = 0; i < CREDENTIAL_ATTEMPTS.perUser; i++) credentialAttempt(a, 'u', 'ip', 0);
    expect(credentialAttempt(a, 'u', 'ip', 0)).not.toBeNull();
    expect(credentialAttempt(b, 'u', 'ip', 0)).toBeNull();
  });
});
