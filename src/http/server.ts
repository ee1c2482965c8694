// The HTTP server: health endpoints, the admin API (admin token check) and, in later stages, the
// gateway, the self-service API and the dashboard.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import Fastify from 'fastify';
import { sql } from 'kysely';
import { apiRoutes } from '../api/api.routes.js';
import type { ApiDeps } from '../api/routes.js';
import { authRoutes } from '../auth/auth.routes.js';
import { oidcRoutes } from '../auth/oidc.routes.js';
import type { Gateway } from '../gateway/gateway.js';
import { createGatewayListener } from '../gateway/listener.js';
import type { Installation } from '../install/installation.js';
import { AppError, toAppError } from '../lib/errors.js';
import { sequentialIds } from '../lib/ids.js';
import { redactSecretShapes } from '../lib/redact-text.js';
import type { Logger } from '../observability/logger.js';
import { dashboardRoutes } from './dashboard.routes.js';
import { loadDashboardAssets } from './dashboard-assets.js';
import { type EnrollRoutesDeps, enrollRoutes } from './enroll.routes.js';
import { errorResponse } from './errors.js';
import { installHygiene } from './hygiene.js';
import {
  applyTimeouts,
  checkingIntervalMs,
  DEFAULT_BODY_LIMIT,
  DEFAULT_TIMEOUTS,
  type ServerTimeouts,
} from './limits.js';
import { metricsRoutes } from './metrics.routes.js';
import type { Lifecycle } from './shutdown.js';

export interface ServerDeps {
  readonly installation: Installation;
  readonly logger: Logger;
  readonly bodyLimit: number;
  readonly trustProxy: boolean;
  readonly version: string;
  /** The Anthropic-compatible gateway; absent in tests of the other surfaces. */
  readonly gateway?: Gateway;
  /** Coder enrollment (POST /api/v1/enroll); absent in tests of the other surfaces. */
  readonly enroll?: EnrollRoutesDeps;
  /** The admin API (/admin/v1) and the self-service API (/api/v1/me). */
  readonly api?: ApiDeps;
  /** serve's graceful shutdown (http/shutdown.ts): /readyz answers 503 once it began. */
  readonly lifecycle?: Lifecycle;
  /** server.public_url (HSTS over https only); defaults to plain http, i.e. no HSTS. */
  readonly publicUrl?: string;
  /** server.cors_origins; none by default. */
  readonly corsOrigins?: readonly string[];
  /** Connection timeouts; the defaults in limits.ts when absent. */
  readonly timeouts?: ServerTimeouts;
}

export async function buildServer(deps: ServerDeps) {
  const requestIds = sequentialIds('req');
  const gatewayListener = deps.gateway
    ? createGatewayListener(deps.gateway, deps.logger, {
        bodyLimit: deps.bodyLimit,
        newRequestId: requestIds,
      })
    : null;
  const timeouts = deps.timeouts ?? DEFAULT_TIMEOUTS;
  const app = Fastify({
    // The gateway routes are answered before Fastify sees them; everything else goes to Fastify.
    serverFactory: (handler) => {
      const listener = gatewayListener
        ? (req: IncomingMessage, res: ServerResponse) => {
            if (!gatewayListener.handle(req, res)) handler(req, res);
          }
        : handler;
      const server = createServer(
        // Large enough that an oversized auth header is answered 401 like any bad key, still bounded.
        { maxHeaderSize: 96 * 1024, connectionsCheckingInterval: checkingIntervalMs(timeouts) },
        listener,
      );
      deps.lifecycle?.attach(server, listener, gatewayListener);
      // Slow-drip clients cannot hold a connection open forever while sending headers or a body.
      applyTimeouts(server, timeouts);
      return server;
    },
    // Fastify's own request logs include the query string (which could carry a key); we log our own lines.
    logger: false,
    // The gateway's limit (deps.bodyLimit) is its listener's; routes here take small bodies or set their own.
    bodyLimit: DEFAULT_BODY_LIMIT,
    trustProxy: deps.trustProxy,
    genReqId: requestIds,
    routerOptions: { maxParamLength: 200 },
  });

  // Every route registered, as `METHOD /path` (the OpenAPI test checks each admin route is documented).
  const routes: string[] = [];
  routeTables.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push(`${method} ${route.url}`);
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('request-id', request.id);
  });
  installHygiene(app, {
    trustProxy: deps.trustProxy,
    publicUrl: deps.publicUrl ?? 'http:',
    corsOrigins: deps.corsOrigins ?? [],
  });

  app.addHook('onResponse', async (request, reply) => {
    deps.logger.info(
      {
        reqId: request.id,
        method: request.method,
        // A key pasted where an id belongs (/admin/v1/keys/tg_…) is not logged.
        path: redactSecretShapes(pathOnly(request.url)),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
      },
      'request',
    );
  });

  app.setErrorHandler(async (error, request, reply) => {
    const appError = fromFrameworkError(error);
    if (appError.code === 'internal') deps.logger.error({ reqId: request.id, err: error }, 'request failed');
    const { status, body } = errorResponse(appError, request.id, isGatewayPath(request.url));
    // Throttles (rate_limited) say when to come back.
    const retryAfter = appError.details.retry_after_s;
    if (typeof retryAfter === 'number' && retryAfter > 0)
      reply.header('retry-after', String(Math.ceil(retryAfter)));
    return reply.status(status).send(body);
  });

  app.setNotFoundHandler(async (request, reply) => {
    const error = new AppError('not_found', `no route for ${request.method} ${pathOnly(request.url)}`);
    const { status, body } = errorResponse(error, request.id, isGatewayPath(request.url));
    return reply.status(status).send(body);
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (deps.lifecycle?.draining())
      return reply.status(503).send({ status: 'unavailable', reason: 'shutting down' });
    try {
      await sql`select 1`.execute(deps.installation.db.kysely);
      return { status: 'ready' };
    } catch {
      return reply.status(503).send({ status: 'unavailable', reason: 'database unreachable' });
    }
  });
  // With the API mounted, `/` is the signed-in page (its HEAD comes with the GET route).
  if (!deps.api) app.head('/', async (_request, reply) => reply.status(200).send());

  if (deps.gateway) {
    const { prometheus, token } = deps.gateway.metrics;
    await app.register(metricsRoutes({ prometheus, token }));
  }

  if (deps.enroll) await app.register(enrollRoutes(deps.enroll));

  if (deps.api) {
    await app.register(apiRoutes(deps.api));
    await app.register(
      authRoutes({
        services: deps.api.services,
        session: deps.api.session,
        clock: deps.api.clock,
        oidcEnabled: deps.api.config.auth.oidc !== null,
      }),
    );
    await app.register(
      dashboardRoutes({
        assets: loadDashboardAssets(),
        session: deps.api.session,
        clock: deps.api.clock,
      }),
    );
    const oidc = deps.api.services.oidc;
    if (oidc) await app.register(oidcRoutes({ oidc, session: deps.api.session, clock: deps.api.clock }));
  }

  return app;
}

const routeTables = new WeakMap<object, readonly string[]>();

/** The routes a server built by buildServer registered, as `METHOD /path`. */
export function registeredRoutes(app: object): readonly string[] {
  return routeTables.get(app) ?? [];
}

function fromFrameworkError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const statusCode = (error as { statusCode?: unknown }).statusCode;
  if (statusCode === 413) return new AppError('too_large', 'request body too large');
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return new AppError('invalid_input', 'malformed request');
  }
  return toAppError(error);
}

function pathOnly(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function isGatewayPath(url: string): boolean {
  return url.startsWith('/v1/') || url === '/v1';
}
