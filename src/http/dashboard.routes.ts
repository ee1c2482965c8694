// The dashboard's pages and files. Every page URL answers the same small shell, which names the
// content-hashed script and stylesheet; the script renders the page from the same JSON routes the CLI
// uses, so a page can never check rights differently from the API. The shell carries no data and no
// secret; the CSP (security-headers.ts) allows scripts, styles and requests from this origin only.
//   GET /assets/{name}                              built files, cached for a year
//   GET /login, /invite/{token}                     sign-in pages (public)
//   GET /, /users, /keys, /credentials, /usage, /audit   admin pages (members are sent to /settings)
//   GET /settings                                   everyone's own settings
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type SessionHttp, sessionOf } from '../auth/session-auth.js';
import { type DashboardAssets, pickEncoding } from './dashboard-assets.js';
import { DASHBOARD_CSP } from './security-headers.js';

export const ADMIN_PAGES = [
  '/',
  '/users',
  '/keys',
  '/credentials',
  '/usage',
  '/audit',
  '/anthropic',
] as const;
export const MEMBER_PAGES = ['/settings'] as const;
export const PUBLIC_PAGES = ['/login', '/invite/:token'] as const;

export interface DashboardRoutesDeps {
  readonly assets: DashboardAssets;
  readonly session: SessionHttp;
  readonly clock: () => number;
}

export function dashboardRoutes(deps: DashboardRoutesDeps) {
  const shell = shellHtml(deps.assets);
  return async (app: FastifyInstance) => {
    app.get('/assets/:name', async (request, reply) => {
      const { name } = request.params as { name: string };
      const asset = deps.assets.files.get(name);
      if (!asset)
        return reply.status(404).header('cache-control', 'no-store').send({ error: 'no such file' });
      const encoding = pickEncoding(request.headers['accept-encoding']);
      reply
        .header('content-type', asset.type)
        .header('cache-control', 'public, max-age=31536000, immutable')
        .header('vary', 'accept-encoding');
      if (encoding) reply.header('content-encoding', encoding);
      return reply.send(encoding === 'br' ? asset.br : encoding === 'gzip' ? asset.gzip : asset.raw);
    });

    for (const path of PUBLIC_PAGES) app.get(path, async (_request, reply) => page(reply, shell));
    for (const path of MEMBER_PAGES)
      app.get(path, async (request, reply) => {
        const who = await signedIn(request);
        return who ? page(reply, shell) : reply.redirect('/login', 303);
      });
    for (const path of ADMIN_PAGES)
      app.get(path, async (request, reply) => {
        const who = await signedIn(request);
        if (!who) return reply.redirect('/login', 303);
        // A member gets their own page; the admin routes would refuse them anyway.
        if (who === 'member') return reply.redirect('/settings', 303);
        return page(reply, shell);
      });
  };

  /** 'admin', 'member' or null when no live session comes with the request. */
  async function signedIn(request: FastifyRequest): Promise<'admin' | 'member' | null> {
    const session = await sessionOf(deps.session, request, deps.clock()).catch(() => null);
    if (!session) return null;
    return !session.person || session.person.role === 'admin' ? 'admin' : 'member';
  }
}

function page(reply: FastifyReply, body: string) {
  return (
    reply
      .status(200)
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', DASHBOARD_CSP)
      .header('cache-control', 'no-store')
      // Never framed, no Referer (invite links carry their token in the path): the server's hook (hygiene.ts).
      .send(body)
  );
}

function shellHtml(assets: DashboardAssets): string {
  const head =
    assets.script && assets.style
      ? `<link rel="stylesheet" href="/assets/${assets.style}">
<script type="module" src="/assets/${assets.script}"></script>`
      : '';
  const missing = assets.script
    ? ''
    : '<p>The dashboard has not been built: run <code>npm run build:web</code> (npm install does it).</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tollgate</title>
<link rel="icon" href="data:,">
${head}
</head><body><div id="app">${missing}</div>
<noscript>The Tollgate dashboard needs JavaScript. The CLI and the HTTP API work without it.</noscript>
</body></html>`;
}
