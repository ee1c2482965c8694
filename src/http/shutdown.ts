// A graceful shutdown of the HTTP server (serve's first SIGTERM or SIGINT): /readyz answers 503 first,
// then no new connection is accepted and idle keep-alive connections are closed, requests and streams in
// flight run to their end within the grace, and those still open when it ends are cut — their upstream
// calls broken, so each handler records what it may have been billed (the reserved worst case, or a cut
// stream's bound) and settles its reservation — before the caller flushes the ledger and exits.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { errorBody } from '../gateway/anthropic-errors.js';
import type { GatewayListener } from '../gateway/listener.js';
import type { Logger } from '../observability/logger.js';

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** How often connections that became idle during the drain are closed. */
const IDLE_SWEEP_MS = 100;
/** After the grace: how long cut requests get to record their usage before their sockets are closed. */
export const CUT_SETTLE_MS = 10_000;

const SHUTTING_DOWN = 'Tollgate is shutting down; retry on another instance';

export interface DrainOptions {
  readonly graceMs: number;
  readonly logger: Logger;
  /** Stops the listener and resolves once every connection ended (Fastify's close). */
  readonly close: () => Promise<void>;
  /** Breaks every upstream call in flight (the gateway's cutUpstream). */
  readonly cut: () => Promise<void>;
  /** See CUT_SETTLE_MS (tests shorten it). */
  readonly settleMs?: number;
}

export interface DrainReport {
  /** Requests still in flight when the grace ended (0: everything finished in time). */
  readonly cut: number;
  /** Gateway requests whose handling had not ended when the drain gave up on them. */
  readonly unfinished: number;
}

/** serve's handle on the server it built: buildServer attaches it, serve drains it. */
export interface Lifecycle {
  /** True once the drain began: /readyz answers 503. */
  readonly draining: () => boolean;
  /** buildServer: the node server, its request listener and the gateway's (or null). */
  attach(server: Server, listener: RequestListener, gateway: GatewayListener | null): void;
  /** Runs the shutdown described at the top of this file; call once. */
  drain(options: DrainOptions): Promise<DrainReport>;
}

export function createLifecycle(): Lifecycle {
  let draining = false;
  let attached: { server: Server; listener: RequestListener; gateway: GatewayListener | null } | null = null;
  return {
    draining: () => draining,
    attach(server, listener, gateway) {
      attached = { server, listener, gateway };
    },
    async drain(options) {
      if (attached === null) throw new Error('no server attached');
      const { server, listener, gateway } = attached;
      const { logger } = options;
      // Readiness first: a load balancer polling /readyz stops sending here before anything else changes.
      draining = true;
      const inFlight = () => gateway?.active() ?? 0;
      logger.info(
        { grace_s: options.graceMs / 1000, gateway_in_flight: inFlight() },
        'shutdown: /readyz answers 503; closing the listener and idle connections, letting requests in flight finish',
      );
      // A request arriving on a connection already open is answered 503 with `connection: close`.
      server.removeListener('request', listener);
      server.on('request', refusing(listener));
      const closed = options.close();
      const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
      server.closeIdleConnections();
      const finished = Promise.all([closed, gateway?.idle()]);
      let cut = 0;
      try {
        if (!(await within(finished, options.graceMs))) {
          cut = inFlight();
          logger.warn(
            { grace_s: options.graceMs / 1000, gateway_in_flight: cut },
            'shutdown: grace ended; cutting the requests still open (each recorded at what it may have been billed)',
          );
          await options.cut();
          const settleMs = options.settleMs ?? CUT_SETTLE_MS;
          await within(gateway?.idle() ?? Promise.resolve(), settleMs);
          server.closeAllConnections();
          await within(finished, settleMs);
        }
      } finally {
        clearInterval(sweep);
      }
      const unfinished = inFlight();
      if (unfinished > 0)
        logger.error(
          { gateway_in_flight: unfinished },
          'shutdown: requests still being handled after the cut; their shared reservations expire on their own',
        );
      else logger.info('shutdown: every request finished and recorded');
      return { cut, unfinished };
    },
  };
}

const NOT_READY = JSON.stringify({ status: 'unavailable', reason: 'shutting down' });

/**
 * During the drain, on connections already open: /readyz and the gateway routes answer 503 (the gateway's
 * in Anthropic's shape, which clients retry), the rest goes to Fastify (closing: 503 too). Every answer
 * closes its connection.
 */
function refusing(listener: RequestListener): RequestListener {
  return (req, res) => {
    res.shouldKeepAlive = false;
    const url = req.url ?? '/';
    const path = url.split('?', 1)[0];
    let body: string;
    if (path === '/readyz') body = NOT_READY;
    else if (path?.startsWith('/v1/'))
      body = errorBody({ status: 503, type: 'overloaded_error', message: SHUTTING_DOWN }, 'req_shutdown');
    else return listener(req, res);
    res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

const settled = () => true;

/** Whether `promise` settled (either way: a failed close must not stop the shutdown) within `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(settled, settled), expired]);
  } finally {
    clearTimeout(timer);
  }
}
