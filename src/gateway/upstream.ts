// The connection to Anthropic: one undici pool per origin, and a classification of what went wrong,
// because only failures that cannot have billed may be retried.

import { EventEmitter } from 'node:events';
import type { Dispatcher } from 'undici';
import { Pool } from 'undici';
import type { OutboundSettings } from '../outbound/outbound.js';
import { createConnector } from '../outbound/tunnel.js';

/**
 * Cancels an upstream request (a client that left). undici takes any EventEmitter with `aborted` as a
 * signal; this one costs a fraction of an AbortController, whose AbortSignal is a DOM EventTarget
 * (measured: ~4 µs per streamed request of the gateway's CPU).
 */
export class Cancel extends EventEmitter {
  aborted = false;

  cancel(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit('abort');
  }
}

/**
 * Request headers as a flat `[name, value, name, value, …]` list: undici takes it as is, and adding the
 * credential per attempt is an array copy, not an object rebuilt key by key.
 */
export type HeaderList = readonly string[];

export interface UpstreamOptions {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly connections?: number;
  /** upstream.proxy_url / ca_file (outbound/outbound.ts); null = plain connections, as before. */
  readonly outbound?: OutboundSettings | null;
}

export interface UpstreamRequest {
  readonly method: 'GET' | 'POST';
  /** Path with query string, e.g. `/v1/messages?beta=true`. */
  readonly path: string;
  readonly headers: HeaderList;
  readonly body: Buffer | null;
  readonly signal: Cancel | null;
}

export type UpstreamOutcome =
  | { kind: 'response'; response: Dispatcher.ResponseData }
  /** The connection failed before the request was sent: nothing can have been billed. */
  | { kind: 'connect-failed'; code: string }
  /** Sent, then the connection broke or the answer took too long: the upstream may have billed. */
  | { kind: 'failed-after-send'; code: string; timeout: boolean }
  | { kind: 'aborted' };

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  // The proxy refused or broke the tunnel; the TLS handshake failed its checks: nothing was sent.
  'EPROXYTUNNEL',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

export function createUpstream(options: UpstreamOptions) {
  const url = new URL(options.baseUrl);
  const prefix = url.pathname.replace(/\/$/, '');
  const connectTimeout = Math.min(options.timeoutMs, 10_000);
  // A proxy or extra CA changes how a connection is opened, never how a request is sent on it.
  const outbound = options.outbound ?? null;
  const pool = new Pool(url.origin, {
    connections: options.connections ?? 256,
    pipelining: 1,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    connect: outbound === null ? { timeout: connectTimeout } : createConnector(outbound, connectTimeout),
    keepAliveTimeout: 30_000,
  });

  async function send(req: UpstreamRequest): Promise<UpstreamOutcome> {
    try {
      const response = await pool.request({
        method: req.method,
        path: prefix + req.path,
        headers: req.headers as string[], // undici only reads the list
        body: req.body,
        signal: req.signal,
      });
      return { kind: 'response', response };
    } catch (error) {
      if (req.signal?.aborted) return { kind: 'aborted' };
      const code = errorCode(error);
      if (CONNECT_CODES.has(code)) return { kind: 'connect-failed', code };
      return { kind: 'failed-after-send', code, timeout: TIMEOUT_CODES.has(code) };
    }
  }

  return {
    send,
    close: () => (pool.destroyed ? Promise.resolve() : pool.close()),
    /**
     * Breaks every upstream call in flight (a graceful shutdown whose grace ended): each fails as a
     * lost connection, so its handler records what it may have been billed (the reserved worst case,
     * or a cut stream's bound) and settles. Nothing can be sent afterwards.
     */
    cut: () => pool.destroy(),
  };
}

export function errorCode(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return 'UNKNOWN';
}

export type Upstream = ReturnType<typeof createUpstream>;
