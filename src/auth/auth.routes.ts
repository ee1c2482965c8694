// Sign-in over HTTP: JSON for the dashboard and scripts, and plain form posts for the pages below.
//   GET  /auth/session            who is signed in, and the session's CSRF token
//   POST /auth/login              {token} (installation admin token) or {login, password}
//   POST /auth/logout             end this session          (session + CSRF)
//   POST /auth/logout-all         end every session of mine (session + CSRF)
//   POST /auth/password           {current_password, new_password} (session + CSRF)
//   GET  /auth/invite/{token}     who an invite link is for
//   POST /invite/{token}          set the password of an invite link and sign in
//   GET  /auth/methods            which ways to sign in this server offers (the login page asks)
// The pages themselves (/login, /invite/{token}) are the dashboard's (src/http/dashboard.routes.ts);
// the forms also post without script, and a refused form answers with a plain page saying why.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod/v4';
import { parsePart } from '../api/validation.js';
import { FORM_PAGE_CSP } from '../http/security-headers.js';
import { AppError, toAppError } from '../lib/errors.js';
import type { Services } from '../services.js';
import { clearedSessionCookie, sessionCookie } from './cookies.js';
import { invitePage, loginPage } from './pages.js';
import type { ActiveSession, OpenedSession } from './session.store.js';
import { refuseCrossOrigin, SESSION_ENDED, type SessionHttp, sessionOf } from './session-auth.js';
import { csrfTokenFor } from './session-secret.js';
import type { ClientInfo } from './sign-in.service.js';

export interface AuthRoutesDeps {
  readonly services: Services;
  readonly session: SessionHttp;
  readonly clock: () => number;
  /** True when single sign-on is configured (the login page offers it). */
  readonly oidcEnabled: boolean;
}

/** Small bodies only: a password is at most 256 characters. */
const BODY_LIMIT = 16 * 1024;

const loginBody = z.union([
  z.strictObject({ token: z.string().max(200) }),
  z.strictObject({ login: z.string().min(1).max(200), password: z.string().max(1000) }),
]);
const passwordBody = z.strictObject({
  current_password: z.string().max(1000),
  new_password: z.string().max(1000),
  csrf_token: z.string().optional(),
});
const inviteBody = z.strictObject({ password: z.string().max(1000) });
const csrfOnly = z.strictObject({ csrf_token: z.string().optional() });

export function authRoutes(deps: AuthRoutesDeps) {
  const { services, session: http } = deps;
  return async (app: FastifyInstance) => {
    // Plain HTML forms post application/x-www-form-urlencoded.
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: BODY_LIMIT },
      (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
    );

    app.get('/auth/session', async (request) => sessionJson(await sessionOf(http, request, deps.clock())));

    app.post('/auth/login', { bodyLimit: BODY_LIMIT }, async (request, reply) => {
      const form = isForm(request);
      try {
        // A sign-in form posted from another site must not sign the browser into someone's account.
        refuseCrossOrigin(http, request.headers);
        const body = parsePart('body', loginBody, request.body) as z.output<typeof loginBody>;
        const client = clientOf(request);
        const opened =
          'token' in body
            ? await services.signIn.withAdminToken(body.token, client)
            : await services.signIn.withPassword(body.login, body.password, client);
        return await signedIn(request, reply, opened, form);
      } catch (error) {
        if (!form) throw error;
        return htmlError(reply, error, (message) => loginPage({ error: message, oidc: deps.oidcEnabled }));
      }
    });

    app.post('/auth/logout', { bodyLimit: BODY_LIMIT }, async (request, reply) => {
      parsePart('body', csrfOnly, request.body ?? {});
      const current = await sessionOf(http, request, deps.clock());
      await services.signIn.logout(current);
      reply.header('set-cookie', clearedSessionCookie(http.cookies));
      if (isForm(request)) return reply.redirect('/login', 303);
      return { signed_out: true, ended_sessions: 1 };
    });

    app.post('/auth/logout-all', { bodyLimit: BODY_LIMIT }, async (request, reply) => {
      parsePart('body', csrfOnly, request.body ?? {});
      const current = await sessionOf(http, request, deps.clock());
      const ended = await services.signIn.logoutEverywhere(current);
      reply.header('set-cookie', clearedSessionCookie(http.cookies));
      return { signed_out: true, ended_sessions: ended };
    });

    app.post('/auth/password', { bodyLimit: BODY_LIMIT }, async (request) => {
      const body = parsePart('body', passwordBody, request.body) as z.output<typeof passwordBody>;
      const current = await sessionOf(http, request, deps.clock());
      const result = await services.signIn.changePassword(
        current,
        body.current_password,
        body.new_password,
        clientOf(request),
      );
      return { changed: true, ended_sessions: result.endedSessions };
    });

    app.get('/auth/invite/:token', async (request) => {
      const { token } = request.params as { token: string };
      const found = await services.invites.inspect(token, clientOf(request));
      return { user: found.user, expires_at: new Date(found.expiresAt).toISOString() };
    });

    app.post('/invite/:token', { bodyLimit: BODY_LIMIT }, async (request, reply) => {
      const { token } = request.params as { token: string };
      const form = isForm(request);
      try {
        refuseCrossOrigin(http, request.headers);
        const body = parsePart('body', inviteBody, request.body) as z.output<typeof inviteBody>;
        const opened = await services.invites.accept(token, body.password, clientOf(request));
        return await signedIn(request, reply, opened, form);
      } catch (error) {
        if (!form) throw error;
        const appError = toAppError(error);
        // A bad password keeps the form; an unusable link shows only why.
        const user = appError.code === 'invalid_input' ? await userOfLink(token, request) : null;
        return htmlError(reply, error, (message) => invitePage({ user, error: message }));
      }
    });

    app.get('/auth/methods', async () => ({ password: true, admin_token: true, oidc: deps.oidcEnabled }));
  };

  async function userOfLink(token: string, request: FastifyRequest): Promise<string | null> {
    return services.invites
      .inspect(token, clientOf(request))
      .then((found) => found.user)
      .catch(() => null);
  }

  async function signedIn(
    request: FastifyRequest,
    reply: FastifyReply,
    opened: OpenedSession,
    form: boolean,
  ) {
    reply.header('set-cookie', sessionCookie(http.cookies, opened.token, opened.expiresAt - deps.clock()));
    if (form) return reply.redirect('/', 303);
    const current = await http.sessions.resolve(opened.token, deps.clock());
    if (!current) throw new AppError('unauthenticated', SESSION_ENDED);
    void request;
    return sessionJson(current);
  }

  function sessionJson(current: ActiveSession) {
    const person = current.person;
    return {
      signed_in: true,
      kind: person ? 'person' : 'installation',
      user: person ? { id: person.id, name: person.name, email: person.email, role: person.role } : null,
      role: person ? person.role : 'admin',
      method: current.method,
      session_id: current.id,
      created_at: new Date(current.createdAt).toISOString(),
      expires_at: new Date(current.expiresAt).toISOString(),
      idle_expires_at: new Date(current.idleExpiresAt).toISOString(),
      csrf_token: csrfTokenFor(http.pepper, current.token),
    };
  }
}

export function clientOf(request: FastifyRequest): ClientInfo {
  const agent = request.headers['user-agent'];
  return { ip: request.ip, userAgent: typeof agent === 'string' ? agent : null };
}

function isForm(request: FastifyRequest): boolean {
  return (request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
}

/** An HTML page under the pages' CSP, never cached (never framed, no Referer: the server's hook, hygiene.ts). */
export function html(reply: FastifyReply, status: number, body: string) {
  return reply
    .status(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', FORM_PAGE_CSP)
    .header('cache-control', 'no-store')
    .send(body);
}

const STATUS: Partial<Record<string, number>> = {
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  rate_limited: 429,
  invalid_input: 400,
};

function htmlError(reply: FastifyReply, error: unknown, render: (message: string) => string) {
  const appError = toAppError(error);
  const retry = appError.details.retry_after_s;
  if (typeof retry === 'number') reply.header('retry-after', String(retry));
  const message = appError.code === 'internal' ? 'something went wrong; try again' : appError.message;
  return html(reply, STATUS[appError.code] ?? 500, render(message));
}
