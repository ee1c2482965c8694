// Opens the Redis (or Valkey) connection named by `redis.url` / TOLLGATE_REDIS_URL. ioredis is loaded on
// first use, so installations without Redis never pay for it. Every command is bounded: a connection
// that cannot be made or a command that gets no answer fails within the timeouts below instead of
// queueing without end (offline queueing is off, so a command sent while disconnected fails at once).
import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';
import { AppError } from '../lib/errors.js';

const require = createRequire(import.meta.url);

export type { Redis };

/** How long a connection attempt and a single command may take. */
export const REDIS_CONNECT_TIMEOUT_MS = 2_000;
export const REDIS_COMMAND_TIMEOUT_MS = 1_000;

export interface RedisConnectOptions {
  /** A name shown by `CLIENT LIST` (e.g. `tollgate-serve`). */
  readonly name?: string;
  /** Subscriber connections must not time out idle commands. */
  readonly subscriber?: boolean;
  /**
   * Every command's caller bounds it with `answeredWithin` instead of ioredis's own timer, which counts a
   * reply already received as late when the event loop was busy past the deadline (see below).
   */
  readonly callerTimeouts?: boolean;
}

/** A command sent whose reply did not come in time: it may still run (or have run) in Redis. */
export class RedisTimeoutError extends Error {
  constructor(ms: number) {
    super(`Redis did not answer within ${ms} ms`);
    this.name = 'RedisTimeoutError';
  }
}

/**
 * `pending`, or a timeout error once `ms` have passed without its reply. Unlike ioredis's
 * `commandTimeout`, a reply that arrived in time but was not read yet — the event loop was busy past
 * the deadline (a loaded machine, a long synchronous task) — is not a timeout: the deadline's timer
 * runs before the turn reads sockets, so the error waits for that read (setImmediate runs after it).
 * ioredis's timer would answer a request 503 for a Redis that answered, and the reply's effect (a
 * budget reservation taken) would stay behind unclaimed.
 */
export function answeredWithin<T>(pending: Promise<T>, ms: number = REDIS_COMMAND_TIMEOUT_MS): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      setImmediate(() => reject(new RedisTimeoutError(ms)));
    }, ms);
    pending.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Connects and waits until the server answers PING; throws AppError('redis_unavailable') otherwise. */
export async function connectRedis(url: string, options: RedisConnectOptions = {}): Promise<Redis> {
  const { Redis: RedisClient } = require('ioredis') as typeof import('ioredis');
  const settings: RedisOptions = {
    connectionName: options.name ?? 'tollgate',
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
    // Reconnect forever with a capped backoff: Redis coming back must heal without a restart.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
  };
  if (!options.subscriber && !options.callerTimeouts) settings.commandTimeout = REDIS_COMMAND_TIMEOUT_MS;
  // A command whose connection dropped before its reply is not sent again on the next connection: its
  // caller has timed it out by then and decided what to do (a lost reservation released, a settlement
  // sent again with its retry arguments). ioredis's own resend would run it a second time behind the
  // caller's back: a reservation nobody settles, or a finish's tokens given back twice.
  if (options.callerTimeouts) settings.autoResendUnfulfilledCommands = false;
  const client = new RedisClient(url, settings);
  // Errors surface through the commands that fail; an unhandled 'error' event must not crash serve.
  client.on('error', () => {});
  try {
    await client.connect();
    await answeredWithin(client.ping());
  } catch (error) {
    client.disconnect();
    throw new AppError('redis_unavailable', `Redis at ${redactUrl(url)} did not answer: ${reason(error)}`);
  }
  return client;
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the configured URL';
  }
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
