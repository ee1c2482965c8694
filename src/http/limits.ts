// How much and how long a client may send, outside the gateway's own body limit (server.body_limit_bytes,
// applied by its listener). Every route is bounded: Fastify's default body limit covers the routes that
// set none, and the server's timeouts cover every connection, gateway included.
import type { Server } from 'node:http';

/** The admin and self-service APIs: policies, names and settings, never files. */
export const API_BODY_LIMIT = 1024 * 1024;
/** Every other Fastify route (health, metrics, pages, assets) takes no body worth the name. */
export const DEFAULT_BODY_LIMIT = 64 * 1024;

export interface ServerTimeouts {
  /** From a request's first byte to the end of its headers (slowloris); answered 408, then closed. */
  readonly headersTimeoutMs: number;
  /** From a request's first byte to the end of its body (a 32 MB upload at ~270 KB/s fits). */
  readonly requestTimeoutMs: number;
  /**
   * Idle time between requests on a kept-alive connection. Above nginx's upstream keepalive_timeout
   * (60 s, deploy/nginx): a proxy must never reuse a connection the server is closing.
   */
  readonly keepAliveTimeoutMs: number;
}

export const DEFAULT_TIMEOUTS: ServerTimeouts = {
  headersTimeoutMs: 30_000,
  requestTimeoutMs: 120_000,
  keepAliveTimeoutMs: 65_000,
};

/**
 * How often Node looks for connections past headersTimeout/requestTimeout (its default is 30 s, which
 * would let a slow client stay twice as long as the bound says).
 */
export function checkingIntervalMs(timeouts: ServerTimeouts): number {
  return Math.max(50, Math.min(5_000, Math.floor(timeouts.headersTimeoutMs / 4)));
}

export function applyTimeouts(server: Server, timeouts: ServerTimeouts): void {
  server.headersTimeout = timeouts.headersTimeoutMs;
  server.requestTimeout = timeouts.requestTimeoutMs;
  server.keepAliveTimeout = timeouts.keepAliveTimeoutMs;
}
