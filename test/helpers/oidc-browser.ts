// A browser's part in single sign-on tests: a cookie jar per origin, and following the redirects from
// Tollgate's /auth/oidc/login through the provider's login step back to the callback.
import { createServer } from 'node:net';
import { type SessionClient, sessionFrom } from './browser-session.js';
import type { TestProvider } from './oidc-provider.js';

/** Cookies per origin (a browser would also honour Path; these tests need not). */
export class Jar {
  readonly byOrigin = new Map<string, Map<string, string>>();
  async fetch(url: string): Promise<Response> {
    const origin = new URL(url).origin;
    const cookies = this.byOrigin.get(origin) ?? new Map<string, string>();
    this.byOrigin.set(origin, cookies);
    const cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const response = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1).trim();
      const gone = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '';
      if (gone) cookies.delete(name);
      else cookies.set(name, value);
    }
    return response;
  }
  get(origin: string, name: string): string | undefined {
    return this.byOrigin.get(origin)?.get(name);
  }
  drop(origin: string, name: string): void {
    this.byOrigin.get(origin)?.delete(name);
  }
}

export interface Finished {
  status: number;
  location: string | null;
  body: string;
  /** The Set-Cookie lines of the callback's answer. */
  setCookies: string[];
  jar: Jar;
  /** The session, when the sign-in opened one. */
  session: SessionClient | null;
}

/** Follows the redirects of a sign-in as `sub`; `beforeCallback` may alter the callback URL or the jar. */
export async function followSignIn(
  tollgate: string,
  idp: TestProvider,
  sub: string,
  beforeCallback?: (url: URL, jar: Jar) => URL,
): Promise<Finished> {
  const jar = new Jar();
  let url = new URL(`${tollgate}/auth/oidc/login`);
  for (let hop = 0; hop < 12; hop++) {
    if (url.origin === idp.issuer && url.pathname.startsWith('/interaction/'))
      url.searchParams.set('as', sub);
    const isCallback = url.origin === tollgate && url.pathname === '/auth/oidc/callback';
    if (isCallback && beforeCallback) url = beforeCallback(url, jar);
    const response = await jar.fetch(url.href);
    const location = response.headers.get('location');
    if (isCallback || !location || response.status < 300 || response.status >= 400) {
      const body = await response.text();
      const token = jar.get(tollgate, 'tollgate_session');
      return {
        status: response.status,
        location,
        body,
        setCookies: response.headers.getSetCookie(),
        jar,
        session: token ? sessionFrom(tollgate, `tollgate_session=${token}`, '') : null,
      };
    }
    url = new URL(location, url);
  }
  throw new Error('too many redirects');
}

/** A port free right now (the harness must know its public URL before it listens). */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}
