// The session cookie: HttpOnly (no script reads it), SameSite=Lax (no cross-site POST, fetch or frame
// carries it), Path=/, and — when the public URL is HTTPS — Secure under the `__Host-` prefix, which
// browsers only accept from a secure origin, without a Domain, for the whole host.

export interface CookieSettings {
  readonly secure: boolean;
}

export function sessionCookieName(settings: CookieSettings): string {
  return settings.secure ? '__Host-tollgate_session' : 'tollgate_session';
}

/** `Set-Cookie` for a new session, living as long as the session may. */
export function sessionCookie(settings: CookieSettings, token: string, maxAgeMs: number): string {
  const parts = [
    `${sessionCookieName(settings)}=${token}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Lax',
    `Max-Age=${Math.max(0, Math.floor(maxAgeMs / 1000))}`,
  ];
  if (settings.secure) parts.push('Secure');
  return parts.join('; ');
}

/** `Set-Cookie` that removes the session cookie. */
export function clearedSessionCookie(settings: CookieSettings): string {
  return sessionCookie(settings, '', 0);
}

/** The session id in a `Cookie` header, or '' (bounded: a header of any size costs one scan). */
export function sessionTokenOf(settings: CookieSettings, header: string | undefined): string {
  if (typeof header !== 'string' || header.length > 16 * 1024) return '';
  const name = `${sessionCookieName(settings)}=`;
  for (const part of header.split(';')) {
    const trimmed = part.trim();
    if (trimmed.startsWith(name)) return trimmed.slice(name.length, name.length + 200);
  }
  return '';
}
