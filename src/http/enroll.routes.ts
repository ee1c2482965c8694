// POST /api/v1/enroll: a coder's `claude-code setup` exchanges a one-time enrollment code for a gateway key
// and the Claude Code settings to write. Unauthenticated by design (the code is the credential), so
// attempts are counted per client address and every wrong, expired or used code gets the same answer.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  type AttemptLimiterOptions,
  createAttemptLimiter,
  DEFAULT_ATTEMPT_LIMITS,
} from '../claude-code/attempt-limiter.js';
import { createCoderService } from '../claude-code/coder.service.js';
import { createEnrollmentService } from '../claude-code/enrollment.service.js';
import type { Config } from '../config/load.js';
import type { Installation } from '../install/installation.js';
import type { Clock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import { createServices } from '../services.js';
import { errorResponse } from './errors.js';

export interface EnrollRoutesDeps {
  readonly installation: Installation;
  readonly config: Config;
  readonly clock: Clock;
  readonly attempts?: AttemptLimiterOptions;
}

/** A code is ~25 characters; anything much larger is not an enrollment request. */
const BODY_LIMIT = 1024;
const INVALID_CODE = 'invalid, expired or already used enrollment code';

const bodySchema = z.object({ code: z.string().max(64) }).strict();

export function enrollRoutes(deps: EnrollRoutesDeps) {
  const { installation, config, clock } = deps;
  const services = createServices(installation, config, clock);
  const ctx = { installation, clock };
  const coders = createCoderService(ctx, {
    users: services.users,
    keys: services.keys,
    modelsAllowed: config.claude.models_allowed,
  });
  const enrollment = createEnrollmentService(ctx, { coders });
  const limiter = createAttemptLimiter(deps.attempts ?? DEFAULT_ATTEMPT_LIMITS);

  const refuse = (reply: FastifyReply, request: FastifyRequest, error: AppError) => {
    const { status, body } = errorResponse(error, request.id, false);
    return reply.status(status).send(body);
  };

  return async (app: FastifyInstance): Promise<void> => {
    // JSON only: without a text/plain parser in this scope, other bodies are answered 415 by Fastify.
    app.removeContentTypeParser('text/plain');

    // Counted before the body is read, so a flood of attempts costs no parsing or database work.
    app.addHook('onRequest', async (request, reply) => {
      const verdict = limiter.hit(request.ip, clock());
      if (verdict.allowed) return;
      reply.header('retry-after', String(Math.ceil(verdict.retryAfterMs / 1000)));
      // No AppError code means "rate limited" on this surface, so the body is written here.
      return reply.status(429).send({
        error: {
          code: 'rate_limited',
          message: 'too many enrollment attempts; try again later',
          requestId: request.id,
        },
      });
    });

    app.post('/api/v1/enroll', { bodyLimit: BODY_LIMIT }, async (request, reply) => {
      const parsed = bodySchema.safeParse(request.body);
      if (!parsed.success)
        return refuse(
          reply,
          request,
          new AppError('invalid_input', 'expected a JSON body {"code": "ENR-…"}'),
        );
      const result = await enrollment.redeem(parsed.data.code);
      if (!result.ok) return refuse(reply, request, new AppError('invalid_input', INVALID_CODE));
      // The answer carries a secret: no intermediary may keep it.
      reply.header('cache-control', 'no-store');
      return {
        key: result.key,
        base_url: config.server.public_url,
        model: result.model,
        deny: config.claude_code.deny,
        profile: result.profile,
      };
    });
  };
}
