// The Anthropic-compatible routes as a plain node:http listener in front of Fastify: the hot path
// skips the framework's routing, hooks and body parsing. Bodies are read as raw bytes (forwarded
// unchanged unless Tollgate must patch them) with a size limit, and answers are written directly.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { redactSecretShapes } from '../lib/redact-text.js';
import type { Logger } from '../observability/logger.js';
import { tooLarge } from './anthropic-errors.js';
import { handleCountTokens, handleModels } from './free-routes.js';
import type { Gateway } from './gateway.js';
import { type GatewayRequest, handleMessages } from './messages.js';
import { sendError } from './respond.js';

type Handler = (req: GatewayRequest) => Promise<void>;

export interface ListenerOptions {
  readonly bodyLimit: number;
  readonly newRequestId: () => string;
}

const MODELS_PREFIX = '/v1/models/';

/** The gateway's node:http listener, and what a graceful shutdown needs to know of it. */
export interface GatewayListener {
  /** Handles a gateway route and says true, or says false for anything else. */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Gateway requests whose handling (answer, usage record, settlement) has not ended yet. */
  readonly active: () => number;
  /** Resolves once no gateway request is being handled (at once when none is). */
  readonly idle: () => Promise<void>;
}

/** Returns the listener of the gateway routes (see GatewayListener). */
export function createGatewayListener(
  gateway: Gateway,
  logger: Logger,
  options: ListenerOptions,
): GatewayListener {
  const deps = gateway.deps;
  // Requests being handled, for a graceful shutdown: a count and one shared callback, so a request
  // costs an increment and a decrement (the promise chain below has the same length as before).
  let active = 0;
  let waiters: Array<() => void> = [];
  const ended = () => {
    if (--active > 0 || waiters.length === 0) return;
    const wake = waiters;
    waiters = [];
    for (const w of wake) w();
  };
  const messages: Handler = (req) => handleMessages(deps, req);
  const countTokens: Handler = (req) => handleCountTokens(deps, req);
  const listModels: Handler = (req) => handleModels(deps, req, null);

  function route(method: string | undefined, path: string): Handler | null {
    if (method === 'POST') {
      if (path === '/v1/messages') return messages;
      if (path === '/v1/messages/count_tokens') return countTokens;
      return null;
    }
    if (method !== 'GET') return null;
    if (path === '/v1/models') return listModels;
    if (
      path.startsWith(MODELS_PREFIX) &&
      path.length > MODELS_PREFIX.length &&
      path.indexOf('/', MODELS_PREFIX.length) === -1
    ) {
      let id: string;
      try {
        id = decodeURIComponent(path.slice(MODELS_PREFIX.length));
      } catch {
        return null;
      }
      return (req) => handleModels(deps, req, id);
    }
    return null;
  }

  const handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const handler = route(req.method, q === -1 ? url : url.slice(0, q));
    if (!handler) return false;
    const id = options.newRequestId();
    const started = performance.now();
    if (logger.isLevelEnabled('info')) {
      res.once('finish', () => {
        const raw = q === -1 ? url : url.slice(0, q);
        // Only a model id is caller-chosen in a gateway path; a key pasted there is not logged.
        const path = raw.startsWith(MODELS_PREFIX) ? redactSecretShapes(raw) : raw;
        logger.info(
          {
            reqId: id,
            method: req.method,
            path,
            status: res.statusCode,
            ms: Math.round((performance.now() - started) * 100) / 100,
          },
          'request',
        );
      });
    }
    active++;
    readBody(req, options.bodyLimit)
      .then((body) => {
        if (body === null) {
          res.setHeader('connection', 'close');
          sendError(res, tooLarge(options.bodyLimit), id);
          return;
        }
        return handler({ id, headers: req.headers, url, body, res });
      })
      .then(ended, (error: unknown) => {
        logger.error({ reqId: id, err: error }, 'gateway request failed');
        sendError(res, { status: 500, type: 'api_error', message: 'internal server error' }, id);
        if (!res.writableEnded) res.end();
        ended();
      });
    return true;
  };

  return {
    handle,
    active: () => active,
    idle: () => (active === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
  };
}

const EMPTY = Buffer.alloc(0);

/** The whole body, or null when it exceeds `limit` bytes (then the rest is not read). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.pause();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () =>
      resolve(size === 0 ? EMPTY : chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)),
    );
    req.on('error', reject);
  });
}
