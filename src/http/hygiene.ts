// The hooks that put security headers and (when configured) CORS on every Fastify answer: the admin
// and self-service APIs, sign-in pages, dashboard, enrollment, metrics and health. Installed on the root
// instance so every plugin inherits them; the gateway's /v1/* listener answers before Fastify and is
// untouched. With no CORS origins configured no CORS hook is installed at all.
import type { FastifyInstance } from 'fastify';
import { corsHeaders, preflightHeaders, varyWithOrigin } from './cors.js';
import { ALWAYS, cameOverHttps, HSTS, NO_CONTENT_CSP } from './security-headers.js';

export interface HygieneOptions {
  readonly trustProxy: boolean;
  /** server.public_url: HSTS is sent only when it is https (and the request came over https). */
  readonly publicUrl: string;
  /** server.cors_origins */
  readonly corsOrigins: readonly string[];
}

export function installHygiene(app: FastifyInstance, options: HygieneOptions): void {
  const publicHttps = options.publicUrl.startsWith('https:');
  const allowed = new Set(options.corsOrigins);

  app.addHook('onSend', async (request, reply) => {
    for (const [name, value] of ALWAYS) reply.header(name, value);
    // HTML routes set their own policy (dashboard shell, sign-in forms); everything else loads nothing.
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', NO_CONTENT_CSP);
    const tlsSocket = (request.raw.socket as { encrypted?: boolean } | null)?.encrypted === true;
    if (cameOverHttps({ tlsSocket, protocol: request.protocol, trustProxy: options.trustProxy, publicHttps }))
      reply.header('strict-transport-security', HSTS);
  });

  if (allowed.size === 0) return;

  // A preflight has no route of its own: a listed origin gets its answer here; any other falls through
  // to the 404 and so gets no allow headers. The gateway's paths are not offered to browsers.
  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'OPTIONS' || request.url.startsWith('/v1/')) return;
    const method = request.headers['access-control-request-method'];
    const answer = preflightHeaders(allowed, request.headers.origin, method);
    if (answer === null) return;
    for (const [name, value] of answer) reply.header(name, value);
    return reply.status(204).send();
  });

  app.addHook('onSend', async (request, reply) => {
    // The answer depends on Origin whenever CORS is on, listed or not: caches must keep them apart.
    reply.header('vary', varyWithOrigin(reply.getHeader('vary')));
    for (const [name, value] of corsHeaders(allowed, request.headers.origin)) reply.header(name, value);
  });
}
