// GET /metrics: Prometheus text format, optionally behind a bearer token (metrics.token).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { bearerToken } from '../gateway/admission.js';
import { AppError } from '../lib/errors.js';
import type { Prometheus } from '../metrics/prometheus.js';

export interface MetricsRoutesDeps {
  readonly prometheus: Prometheus;
  /** The bearer token required, or null (open). */
  readonly token: string | null;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function metricsRoutes(deps: MetricsRoutesDeps) {
  // Compared as digests of equal length, in constant time: the token's length is not revealed either.
  const expected = deps.token === null ? null : digest(deps.token);
  return async (app: FastifyInstance) => {
    app.get('/metrics', async (request, reply) => {
      if (expected !== null) {
        const given = bearerToken(request.headers.authorization);
        if (given === null || !timingSafeEqual(digest(given), expected)) {
          reply.header('www-authenticate', 'Bearer realm="metrics"');
          throw new AppError(
            'unauthenticated',
            'GET /metrics needs the metrics bearer token (metrics.token)',
          );
        }
      }
      const text = await deps.prometheus.text();
      return reply
        .header('content-type', deps.prometheus.contentType)
        .header('cache-control', 'no-store')
        .send(text);
    });
  };
}
