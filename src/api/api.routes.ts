// The admin and self-service APIs as one Fastify plugin: every operation, and the OpenAPI document.
import type { FastifyInstance } from 'fastify';
import { ADMIN_OPS } from './admin/index.js';
import { ME_OPS } from './me/index.js';
import { openApiDocument } from './openapi.js';
import { type ApiDeps, mountOperations } from './routes.js';

export const ALL_OPS = [...ADMIN_OPS, ...ME_OPS];

export function apiRoutes(deps: ApiDeps) {
  // Built on first request (most servers are never asked), then kept.
  let document: string | null = null;
  return async (app: FastifyInstance) => {
    // The document is public: it describes routes, never data, and tools fetch it without a token.
    app.get('/admin/v1/openapi.json', async (_request, reply) => {
      document ??= JSON.stringify(openApiDocument(ALL_OPS));
      return reply.header('content-type', 'application/json; charset=utf-8').send(document);
    });
    mountOperations(app, ALL_OPS, deps);
  };
}
