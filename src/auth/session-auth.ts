// A request made with the session cookie: which session it is, whether a state-changing request carries
// the session's CSRF token (and does not come from another origin), and what the session may act as.
import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from '../api/principal.js';
import { AppError } from '../lib/errors.js';
import { type CookieSettings, sessionTokenOf } from './cookies.js';
import type { ActiveSession, SessionStore } from './session.store.js';
import { csrfMatches } from './session-secret.js';

export interface SessionHttp {
  readonly cookies: CookieSettings;
  /** `scheme://host[:port]` of server.public_url: the one origin whose pages may send state changes. */
  readonly publicOrigin: string;
  readonly pepper: Buffer;
  readonly sessions: SessionStore;
  /** Re-asks the identity provider about an OIDC session when due; resolves null when access ended. */
  readonly recheck: ((session: ActiveSession) => Promise<ActiveSession | null>) | null;
}

export const SESSION_ENDED = 'not signed in, or the session has ended: sign in again';
const CSRF_REFUSAL =
  'this request needs the session’s CSRF token in the x-csrf-token header (from GET /auth/session or the sign-in answer)';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

interface RequestLike {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly body?: unknown;
}

/** True when the request carries a session cookie and no bearer credentials (bearer calls win). */
export function usesSessionCookie(http: SessionHttp, request: RequestLike): boolean {
  const h = request.headers;
  if (h.authorization !== undefined || h['x-api-key'] !== undefined) return false;
  return sessionTokenOf(http.cookies, h.cookie) !== '';
}

/**
 * The live session of a cookie request, or a refusal. State-changing methods need the CSRF token (a
 * header, or a `csrf_token` form field) and an Origin, when sent, of this server; those cheap checks
 * come before the database is asked.
 */
export async function sessionOf(
  http: SessionHttp,
  request: RequestLike,
  now: number,
): Promise<ActiveSession> {
  const token = sessionTokenOf(http.cookies, request.headers.cookie);
  if (token === '') throw new AppError('unauthenticated', SESSION_ENDED);
  if (!SAFE_METHODS.has(request.method)) {
    refuseCrossOrigin(http, request.headers);
    if (!csrfMatches(http.pepper, token, presentedCsrf(request)))
      throw new AppError('forbidden', CSRF_REFUSAL);
  }
  let session = await http.sessions.resolve(token, now);
  if (session && session.method === 'oidc' && http.recheck) session = await http.recheck(session);
  if (!session) throw new AppError('unauthenticated', SESSION_ENDED);
  return session;
}

/** Refuses a request whose browser says it comes from a page of another origin. */
export function refuseCrossOrigin(
  http: Pick<SessionHttp, 'publicOrigin'>,
  headers: IncomingHttpHeaders,
): void {
  const origin = headers.origin;
  if (origin !== undefined && origin !== http.publicOrigin && origin !== ownOrigin(headers))
    throw new AppError('forbidden', 'cross-origin requests cannot use a Tollgate session');
  if (headers['sec-fetch-site'] === 'cross-site')
    throw new AppError('forbidden', 'cross-origin requests cannot use a Tollgate session');
}

/** The origin the browser addressed (its Host header), for servers reached under another name. */
function ownOrigin(headers: IncomingHttpHeaders): string | undefined {
  const host = headers.host;
  if (!host) return undefined;
  const origin = headers.origin ?? '';
  const scheme = origin.startsWith('https:') ? 'https' : 'http';
  return `${scheme}://${host}`;
}

function presentedCsrf(request: RequestLike): string {
  const header = request.headers['x-csrf-token'];
  if (typeof header === 'string') return header.slice(0, 200);
  const body = request.body;
  if (body && typeof body === 'object' && 'csrf_token' in body) {
    const field = (body as { csrf_token?: unknown }).csrf_token;
    if (typeof field === 'string') return field.slice(0, 200);
  }
  return '';
}

/** What a session may act as on the admin API (admins and the installation) or the self-service API. */
export function sessionPrincipal(session: ActiveSession, audience: 'admin' | 'member'): Principal {
  const person = session.person;
  if (!person) {
    if (audience === 'admin') return { kind: 'installation', actor: 'admin-token', sessionId: session.id };
    throw new AppError(
      'forbidden',
      'the installation admin session has no self-service account; sign in as a person to use /api/v1/me',
    );
  }
  if (audience === 'admin') {
    if (person.role !== 'admin') throw new AppError('forbidden', 'the admin API needs an admin');
    return {
      kind: 'admin',
      actor: `admin:${person.name}`,
      tokenId: null,
      sessionId: session.id,
      userId: person.id,
      userName: person.name,
    };
  }
  return {
    kind: 'member',
    actor: `user:${person.name}`,
    keyId: null,
    sessionId: session.id,
    userId: person.id,
    userName: person.name,
    role: person.role,
    teamId: person.teamId,
    scopes: ['self-service'],
  };
}
