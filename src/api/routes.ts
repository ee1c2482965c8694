// Mounts operations as Fastify routes: authenticate (admin token, self-service key or dashboard session), validate the
// path, query and body with the operation's own schemas, run it, answer JSON. Errors go to the server's
// one error mapper ({error:{code,message,requestId}}).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type SessionHttp, sessionOf, sessionPrincipal, usesSessionCookie } from '../auth/session-auth.js';
import type { Config } from '../config/load.js';
import { API_BODY_LIMIT } from '../http/limits.js';
import type { Installation } from '../install/installation.js';
import type { Clock } from '../lib/clock.js';
import type { Services } from '../services.js';
import type { BudgetReader, OpContext, Operation, SharedState } from './operation.js';
import { authenticateAdmin, authenticateMember, bearerOf, type Principal } from './principal.js';
import { parseInput } from './validation.js';

export interface ApiDeps {
  readonly installation: Installation;
  readonly services: Services;
  readonly config: Config;
  readonly clock: Clock;
  readonly budgets: BudgetReader | null;
  readonly shared: SharedState;
  /** Dashboard sessions (cookie, CSRF). */
  readonly session: SessionHttp;
}

export type Audience = 'admin' | 'member';

/** Which authentication an operation's path calls for. */
export function audienceOf(op: Pick<Operation, 'path'>): Audience {
  return op.path.startsWith('/admin/') ? 'admin' : 'member';
}

/** `/admin/v1/teams/{team}` → `/admin/v1/teams/:team` */
export function fastifyPath(path: string): string {
  return path.replace(/\{([A-Za-z_]+)\}/g, ':$1');
}

export function mountOperations(app: FastifyInstance, ops: readonly Operation[], deps: ApiDeps): void {
  for (const op of ops) {
    const audience = audienceOf(op);
    app.route({
      method: op.method,
      url: fastifyPath(op.path),
      bodyLimit: API_BODY_LIMIT,
      handler: async (request, reply) => {
        const principal = await authenticate(deps, audience, request);
        const input = parseInput(op, {
          params: request.params as Record<string, string>,
          query: request.query as Record<string, unknown>,
          body: request.body,
        });
        const result = await op.run(contextFor(deps, principal, request), input);
        return reply.status(op.status).send(result);
      },
    });
  }
}

async function authenticate(deps: ApiDeps, audience: Audience, request: FastifyRequest): Promise<Principal> {
  const now = deps.clock();
  // A browser's cookie session (CSRF-checked); explicit bearer credentials, when sent, win.
  if (usesSessionCookie(deps.session, request))
    return sessionPrincipal(await sessionOf(deps.session, request, now), audience);
  if (audience === 'admin')
    return authenticateAdmin(deps.installation, bearerOf(request.headers.authorization), now);
  const header = request.headers['x-api-key'];
  const key = typeof header === 'string' ? header : bearerOf(request.headers.authorization);
  return authenticateMember(deps.installation, key, now);
}

function contextFor(deps: ApiDeps, principal: Principal, request: FastifyRequest): OpContext {
  return {
    services: deps.services,
    installation: deps.installation,
    config: deps.config,
    principal,
    actor: { actor: principal.actor },
    requestId: request.id,
    clientIp: request.ip,
    now: deps.clock,
    budgets: deps.budgets,
    shared: deps.shared,
  };
}
