// One Admin API call over undici: the admin key's headers, a timeout per attempt, bounded retries on
// 429 / 5xx / connection errors honouring `retry-after`, and the answer checked with zod.
import { setTimeout as sleep } from 'node:timers/promises';
import { type Dispatcher, request } from 'undici';
import type { z } from 'zod';
import { AppError } from '../lib/errors.js';
import { adminError } from './admin-errors.js';
import { DEFAULT_RETRY, isRetryableStatus, nextDelayMs, parseRetryAfter, type RetryPolicy } from './retry.js';
import { errorBodySchema } from './schemas.js';

const ANTHROPIC_VERSION = '2023-06-01';

export interface TransportOptions {
  readonly baseUrl: string;
  /** The admin key; sent in `x-api-key` only, never logged or put in a message. */
  readonly adminKey: string;
  readonly timeoutMs: number;
  /** The outbound dispatcher (proxy, extra CA: outbound/outbound.ts); absent = undici's global one. */
  readonly dispatcher?: Dispatcher;
  readonly retry?: Partial<RetryPolicy>;
  /** Injected so tests of the policy can run without waiting (default: real timers). */
  readonly sleep?: (ms: number) => Promise<unknown>;
}

export interface CallSpec<S extends z.ZodType> {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** An array value repeats the parameter (`group_by[]=a&group_by[]=b`). */
  readonly query?: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly body?: unknown;
  /** The `anthropic-beta` feature of a beta endpoint. */
  readonly beta?: string;
  readonly schema: S;
}

type Attempt =
  | { kind: 'answer'; status: number; retryAfter: string | undefined; text: string }
  | { kind: 'network'; reason: string };

export type AdminTransport = <S extends z.ZodType>(spec: CallSpec<S>) => Promise<z.output<S>>;

export function createTransport(options: TransportOptions): AdminTransport {
  const policy: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };
  const wait = options.sleep ?? ((ms: number) => sleep(ms));
  const base = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;

  async function once(spec: CallSpec<z.ZodType>): Promise<Attempt> {
    const url = new URL(spec.path.replace(/^\//, ''), base);
    for (const [name, value] of Object.entries(spec.query ?? {})) {
      if (typeof value === 'string') url.searchParams.set(name, value);
      else if (value !== undefined) for (const one of value) url.searchParams.append(name, one);
    }
    const headers: Record<string, string> = {
      'x-api-key': options.adminKey,
      'anthropic-version': ANTHROPIC_VERSION,
    };
    if (spec.beta) headers['anthropic-beta'] = spec.beta;
    if (spec.body !== undefined) headers['content-type'] = 'application/json';
    try {
      const response = await request(url, {
        method: spec.method,
        headers,
        ...(spec.body === undefined ? {} : { body: JSON.stringify(spec.body) }),
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        signal: AbortSignal.timeout(options.timeoutMs),
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      });
      const header = response.headers['retry-after'];
      const text = await response.body.text();
      return {
        kind: 'answer',
        status: response.statusCode,
        retryAfter: Array.isArray(header) ? header[0] : header,
        text,
      };
    } catch (cause) {
      return { kind: 'network', reason: describeNetworkError(cause) };
    }
  }

  return async function call<S extends z.ZodType>(spec: CallSpec<S>): Promise<z.output<S>> {
    let waited = 0;
    for (let attempt = 1; ; attempt++) {
      const result = await once(spec);
      const retryable = result.kind === 'network' || isRetryableStatus(result.status);
      if (!retryable) return settle(spec, result);
      const delay = nextDelayMs(
        policy,
        attempt,
        waited,
        result.kind === 'answer' ? parseRetryAfter(result.retryAfter) : null,
      );
      if (delay === null) return giveUp(spec, result, attempt);
      waited += delay;
      await wait(delay);
    }
  };

  function settle<S extends z.ZodType>(spec: CallSpec<S>, result: Attempt & { kind: 'answer' }): z.output<S> {
    if (result.status >= 200 && result.status < 300) {
      const parsed = spec.schema.safeParse(parseJson(result.text));
      if (parsed.success) return parsed.data;
      throw new AppError(
        'upstream_error',
        `Anthropic's answer to ${spec.method} ${spec.path} was not in the expected shape`,
        { status: result.status, issues: parsed.error.issues.length },
      );
    }
    throw adminError(result.status, errorMessage(result.text), spec.beta !== undefined);
  }

  function giveUp(spec: CallSpec<z.ZodType>, result: Attempt, attempts: number): never {
    if (result.kind === 'network') {
      throw new AppError(
        'upstream_unreachable',
        `could not reach Anthropic at ${new URL(base).origin} (${result.reason}) after ${plural(attempts)}`,
        { network: result.reason, attempts },
      );
    }
    const error = adminError(result.status, errorMessage(result.text), spec.beta !== undefined);
    throw new AppError(error.code, `${error.message} (gave up after ${plural(attempts)})`, {
      ...error.details,
      attempts,
    });
  }
}

function plural(attempts: number): string {
  return attempts === 1 ? '1 attempt' : `${attempts} attempts`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Anthropic's `error.message`, or null when the body is not its error shape. */
function errorMessage(text: string): string | null {
  const parsed = errorBodySchema.safeParse(parseJson(text));
  return parsed.success ? parsed.data.error.message : null;
}

function describeNetworkError(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    if (cause.name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT') return 'timed out';
    if (typeof code === 'string') return code;
    return cause.name;
  }
  return 'network error';
}
