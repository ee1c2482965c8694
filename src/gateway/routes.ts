// The Anthropic-compatible routes, registered in their own Fastify scope: bodies arrive as raw bytes
// (forwarded unchanged unless Tollgate must patch them) and answers are written on the raw response.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../observability/logger.js';
import { handleCountTokens, handleModels } from './free-routes.js';
import type { Gateway } from './gateway.js';
import { type GatewayRequest, handleMessages } from './messages.js';
import { sendError } from './respond.js';

export function gatewayRoutes(gateway: Gateway, logger: Logger) {
  return async (app: FastifyInstance): Promise<void> => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

    const run =
      (handler: (req: GatewayRequest) => Promise<void>) =>
      async (request: FastifyRequest, reply: FastifyReply) => {
        reply.hijack();
        const req: GatewayRequest = {
          id: request.id,
          headers: request.headers,
          url: request.url,
          body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
          res: reply.raw,
        };
        try {
          await handler(req);
        } catch (error) {
          logger.error({ reqId: request.id, err: error }, 'gateway request failed');
          sendError(
            reply.raw,
            { status: 500, type: 'api_error', message: 'internal server error' },
            request.id,
          );
          if (!reply.raw.writableEnded) reply.raw.end();
        }
      };

    app.post(
      '/v1/messages',
      run((req) => handleMessages(gateway.deps, req)),
    );
    app.post(
      '/v1/messages/count_tokens',
      run((req) => handleCountTokens(gateway.deps, req)),
    );
    app.get(
      '/v1/models',
      run((req) => handleModels(gateway.deps, req, null)),
    );
    app.get<{ Params: { id: string } }>('/v1/models/:id', async (request, reply) =>
      run((req) => handleModels(gateway.deps, req, request.params.id))(request, reply),
    );
  };
}
