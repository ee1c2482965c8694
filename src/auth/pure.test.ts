// The pure parts of sign-in: the throttle's window and bounds, cookie attributes and parsing, the CSRF
// token and the session-sealed refresh token, the password rules, and HTML escaping of the pages.
import { describe, expect, it } from 'vitest';
import { clearedSessionCookie, sessionCookie, sessionTokenOf } from './cookies.js';
import { invitePage, loginPage } from './pages.js';
import { checkNewPassword, hashPassword, verifyPassword } from './password.js';
import { csrfMatches, csrfTokenFor, openWithSession, sealWithSession } from './session-secret.js';
import { accountKey, addressKey, createSignInThrottle } from './sign-in-throttle.js';

describe('sign-in throttle', () => {
  it('refuses the 11th attempt after 10 failures in a minute, per key, and forgets after the window', () => {
    const t = createSignInThrottle();
    const keys = [accountKey('Ada'), addressKey('10.0.0.1')];
    for (let i = 0; i < 10; i++) {
      expect(t.retryAfter(keys, 1000 + i)).toBe(0);
      t.fail(keys, 1000 + i);
    }
    expect(t.retryAfter(keys, 1010)).toBeGreaterThan(0);
    // The account is throttled from any address, the address for any account.
    expect(t.retryAfter([accountKey('ada'), addressKey('10.0.0.2')], 1010)).toBeGreaterThan(0);
    expect(t.retryAfter([accountKey('bob'), addressKey('10.0.0.1')], 1010)).toBeGreaterThan(0);
    expect(t.retryAfter([accountKey('bob'), addressKey('10.0.0.2')], 1010)).toBe(0);
    expect(t.retryAfter(keys, 1000 + 60_000)).toBe(0);
  });

  it('a success clears the account, not the address; memory stays bounded', () => {
    const t = createSignInThrottle({ maxFailures: 2, windowMs: 60_000, maxEntries: 100 });
    t.fail([accountKey('a'), addressKey('x')], 1);
    t.fail([accountKey('a'), addressKey('x')], 2);
    t.succeed(accountKey('a'));
    expect(t.retryAfter([accountKey('a')], 3)).toBe(0);
    expect(t.retryAfter([addressKey('x')], 3)).toBeGreaterThan(0);
    for (let i = 0; i < 1000; i++) t.fail([accountKey(`u${i}`)], 10);
    // The oldest entries were dropped to keep 100; the newest are still counted.
    expect(t.retryAfter([accountKey('u999')], 11)).toBe(0);
    t.fail([accountKey('u999')], 12);
    expect(t.retryAfter([accountKey('u999')], 13)).toBeGreaterThan(0);
  });
});

describe('session cookie', () => {
  it('is HttpOnly, SameSite=Lax, Path=/; Secure under __Host- on HTTPS; cleared with Max-Age=0', () => {
    expect(sessionCookie({ secure: false }, 'tgs_x', 3_600_000)).toBe(
      'tollgate_session=tgs_x; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600',
    );
    expect(sessionCookie({ secure: true }, 'tgs_x', 1000)).toBe(
      '__Host-tollgate_session=tgs_x; Path=/; HttpOnly; SameSite=Lax; Max-Age=1; Secure',
    );
    expect(clearedSessionCookie({ secure: false })).toContain('Max-Age=0');
  });

  it('reads its own cookie among others and ignores look-alikes and huge headers', () => {
    const plain = { secure: false };
    expect(sessionTokenOf(plain, 'a=1; tollgate_session=tgs_abc; b=2')).toBe('tgs_abc');
    expect(sessionTokenOf(plain, 'xtollgate_session=tgs_abc')).toBe('');
    expect(sessionTokenOf({ secure: true }, 'tollgate_session=tgs_abc')).toBe('');
    expect(sessionTokenOf(plain, `${'a'.repeat(20_000)}; tollgate_session=tgs_abc`)).toBe('');
    expect(sessionTokenOf(plain, undefined)).toBe('');
  });
});

describe('session secrets', () => {
  const pepper = Buffer.alloc(32, 7);
  it('the CSRF token is bound to the session id', () => {
    const token = csrfTokenFor(pepper, 'tgs_one');
    expect(csrfMatches(pepper, 'tgs_one', token)).toBe(true);
    expect(csrfMatches(pepper, 'tgs_two', token)).toBe(false);
    expect(csrfMatches(pepper, 'tgs_one', '')).toBe(false);
    expect(csrfMatches(Buffer.alloc(32, 8), 'tgs_one', token)).toBe(false);
  });

  it('a refresh token sealed with a session opens only with that session id and row', () => {
    const sealed = sealWithSession('tgs_one', 'ses_1', 'refresh-secret');
    expect(sealed).not.toContain('refresh-secret');
    expect(openWithSession('tgs_one', 'ses_1', sealed)).toBe('refresh-secret');
    expect(openWithSession('tgs_two', 'ses_1', sealed)).toBeNull();
    expect(openWithSession('tgs_one', 'ses_2', sealed)).toBeNull();
    expect(openWithSession('tgs_one', 'ses_1', `${sealed.slice(0, -2)}AA`)).toBeNull();
    expect(openWithSession('tgs_one', 'ses_1', 'garbage')).toBeNull();
  });
});

describe('passwords', () => {
  const person = { name: 'ada', email: 'ada@example.com' };
  it('refuses short, over-long, and own-name passwords; accepts a long phrase', () => {
    expect(() => checkNewPassword('short', person)).toThrow(/at least 12/);
    expect(() => checkNewPassword('x'.repeat(257), person)).toThrow(/at most 256/);
    expect(() => checkNewPassword('ADA@example.com', person)).toThrow(/name or email/);
    expect(() => checkNewPassword('correct horse battery', person)).not.toThrow();
  });

  it('argon2id: the right password verifies, a wrong one, a null hash and an over-long one do not', async () => {
    const stored = await hashPassword('correct horse battery');
    expect(stored).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await verifyPassword(stored, 'correct horse battery')).toBe(true);
    expect(await verifyPassword(stored, 'correct horse batterx')).toBe(false);
    expect(await verifyPassword(null, 'correct horse battery')).toBe(false);
    expect(await verifyPassword(stored, `correct horse battery${'x'.repeat(300)}`)).toBe(false);
  });
});

describe('pages', () => {
  it('escape every value they show', () => {
    const page = invitePage({ user: '<script>x</script>', error: '<b>"' });
    expect(page).not.toContain('<script>x');
    expect(page).toContain('&#60;script&#62;');
    expect(page).toContain('&#60;b&#62;&#34;');
    expect(loginPage({ error: null, oidc: true })).toContain('/auth/oidc/login');
    expect(loginPage({ error: null, oidc: false })).not.toContain('/auth/oidc/login');
  });
});
