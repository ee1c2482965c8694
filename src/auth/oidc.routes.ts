// Single sign-on over HTTP (registered only when auth.oidc is configured):
//   GET /auth/oidc/login      start: a sealed pending cookie, then 303 to the identity provider
//   GET /auth/oidc/callback   finish: checks, the rules, a session cookie, then 303 to /
// Refusals show the sign-in page with a short reason; codes and tokens are never echoed.
import type { FastifyInstance, FastifyReply } from 'fastify';
import * as oidc from 'openid-client';
import { toAppError } from '../lib/errors.js';
import { clientOf, html } from './auth.routes.js';
import { sessionCookie } from './cookies.js';
import type { OidcService } from './oidc.service.js';
import { openPending, PENDING_TTL_MS, pendingCookie, pendingCookieOf, sealPending } from './oidc-pending.js';
import { loginPage } from './pages.js';
import type { SessionHttp } from './session-auth.js';

export interface OidcRoutesDeps {
  readonly oidc: OidcService;
  readonly session: SessionHttp;
  readonly clock: () => number;
}

const EXPIRED = 'the single sign-on took too long or was started in another browser; try again';
const MISMATCH = 'the answer from the identity provider does not belong to this sign-in; try again';
const PROVIDER_SAID_NO = 'the identity provider did not sign you in';

export function oidcRoutes(deps: OidcRoutesDeps) {
  const { session: http } = deps;
  return async (app: FastifyInstance) => {
    app.get('/auth/oidc/login', async (_request, reply) => {
      const pending = {
        state: oidc.randomState(),
        nonce: oidc.randomNonce(),
        verifier: oidc.randomPKCECodeVerifier(),
        createdAt: deps.clock(),
      };
      try {
        const url = await deps.oidc.authorizationUrl(pending);
        reply.header(
          'set-cookie',
          pendingCookie(http.cookies, sealPending(http.pepper, pending), PENDING_TTL_MS),
        );
        reply.header('cache-control', 'no-store');
        return reply.redirect(url.href, 303);
      } catch (error) {
        return refusal(reply, error);
      }
    });

    app.get('/auth/oidc/callback', async (request, reply) => {
      // The pending sign-in is single-use: cleared whatever happens next.
      reply.header('set-cookie', pendingCookie(http.cookies, '', 0));
      const sealed = pendingCookieOf(http.cookies, request.headers.cookie);
      const pending = sealed === '' ? null : openPending(http.pepper, sealed, deps.clock());
      if (!pending) return page(reply, 403, EXPIRED);
      const query = queryOf(request.url);
      const params = new URLSearchParams(query);
      // Checked before the provider is asked anything: a forged or replayed answer costs nothing.
      if (params.get('state') !== pending.state) return page(reply, 403, MISMATCH);
      if (params.has('error')) return page(reply, 403, PROVIDER_SAID_NO);
      try {
        const opened = await deps.oidc.finish(query, pending, clientOf(request));
        // Fastify adds to the Set-Cookie list: the pending cookie's clearing above stays.
        reply.header(
          'set-cookie',
          sessionCookie(http.cookies, opened.token, opened.expiresAt - deps.clock()),
        );
        return reply.redirect('/', 303);
      } catch (error) {
        return refusal(reply, error);
      }
    });
  };
}

function queryOf(url: string): string {
  const at = url.indexOf('?');
  return at < 0 ? '' : url.slice(at, at + 8 * 1024);
}

function refusal(reply: FastifyReply, error: unknown) {
  const appError = toAppError(error);
  if (appError.code === 'forbidden') return page(reply, 403, appError.message);
  if (appError.code === 'upstream_unreachable') return page(reply, 503, appError.message);
  if (appError.code === 'rate_limited' || appError.code === 'conflict')
    return page(reply, appError.code === 'conflict' ? 409 : 429, appError.message);
  throw error;
}

function page(reply: FastifyReply, status: number, reason: string) {
  return html(reply, status, loginPage({ error: reason, oidc: true }));
}
