// Builds what the API routes need from an opened installation (and, when serving, the gateway).

import type { SessionHttp } from '../auth/session-auth.js';
import type { Config } from '../config/load.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Installation } from '../install/installation.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../observability/logger.js';
import { createServices, type Services } from '../services.js';
import type { BudgetReader } from './operation.js';
import type { ApiDeps } from './routes.js';

export function createApiDeps(
  installation: Installation,
  config: Config,
  clock: Clock,
  gateway: Gateway | null,
  logger: Logger | null = null,
): ApiDeps {
  const services = createServices(installation, config, clock);
  return {
    installation,
    config,
    clock,
    services,
    session: sessionHttp(installation, config, services, logger),
    budgets: gateway ? budgetReader(gateway, clock) : null,
    shared: {},
  };
}

/** How cookie sessions are read and checked; secure cookies when the public URL is HTTPS. */
export function sessionHttp(
  installation: Installation,
  config: Config,
  services: Services,
  logger: Logger | null = null,
): SessionHttp {
  const publicUrl = new URL(config.server.public_url);
  const oidc = services.oidc;
  return {
    cookies: { secure: publicUrl.protocol === 'https:' },
    publicOrigin: publicUrl.origin,
    pepper: installation.pepper,
    sessions: services.sessions,
    // Single sign-on sessions ask the identity provider again when due; an outage is only logged.
    recheck: oidc
      ? async (session) => {
          const result = await oidc.recheck(session);
          if (result.warning) logger?.warn({ sessionId: session.id }, result.warning);
          return result.session;
        }
      : null,
  };
}

/** Reads the gateway's budget book: what it holds for a scope (spent as it counts it, and in-flight reservations). */
function budgetReader(gateway: Gateway, clock: Clock): BudgetReader {
  return (scope, id, period) => {
    const figures = gateway.deps.budgets.snapshot(scope, id, period, clock());
    // A scope the book has not loaded reads 0/0: the database's figure is the one to use then.
    return figures.spent === 0 && figures.reserved === 0 ? null : figures;
  };
}
