// Checks a secret with Anthropic before it is stored, with a call that costs nothing.
import { type Dispatcher, request } from 'undici';
import type { Provider } from '../db/schema.js';
import { AppError } from '../lib/errors.js';

export interface UpstreamTarget {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  /** The outbound dispatcher (proxy, extra CA: outbound/outbound.ts); absent = undici's global one. */
  readonly dispatcher?: Dispatcher;
}

const ANTHROPIC_VERSION = '2023-06-01';

/** The free call that proves a key works: listing models for API keys, `/me` for admin keys. */
function probePath(provider: Provider): string | null {
  if (provider === 'anthropic') return '/v1/models?limit=1';
  if (provider === 'anthropic-admin') return '/v1/organizations/me';
  return null;
}

/** Refuses secrets whose shape does not match the provider (a common copy-paste mistake). */
export function checkSecretShape(provider: Provider, secret: string): void {
  if (secret.length === 0) throw new AppError('invalid_input', 'the secret is empty');
  if (secret.length > 4096) throw new AppError('invalid_input', 'the secret is longer than 4096 characters');
  if (/\s/.test(secret) || [...secret].some(isControl)) {
    throw new AppError('invalid_input', 'the secret contains whitespace or control characters');
  }
  if (provider === 'anthropic' && secret.startsWith('sk-ant-admin')) {
    throw new AppError(
      'invalid_input',
      'this is an Anthropic admin key; add it with --provider anthropic-admin',
    );
  }
  if (provider === 'anthropic-admin' && secret.startsWith('sk-ant-api')) {
    throw new AppError(
      'invalid_input',
      'this is an Anthropic API key, not an admin key; add it with --provider anthropic',
    );
  }
  if ((provider === 'anthropic' || provider === 'anthropic-admin') && !secret.startsWith('sk-ant-')) {
    throw new AppError(
      'invalid_input',
      'Anthropic keys start with "sk-ant-"; check that the whole key was pasted',
    );
  }
}

function isControl(char: string): boolean {
  const code = char.charCodeAt(0);
  return code < 0x20 || code === 0x7f;
}

export type ValidationOutcome = { ok: true } | { ok: false; error: AppError };

/** What the free validation call answered: a status, or a network failure (nothing answered). */
export type ProbeAnswer =
  | { kind: 'status'; status: number; retryAfter: string | undefined }
  | { kind: 'network'; cause: unknown; url: URL };

/**
 * Makes the free validation call for `secret` (bounded by `target.timeoutMs`); null for providers
 * that have none. Used before storing a key and by the gateway to confirm a key an upstream 401 put
 * in doubt.
 */
export async function probeStatus(
  provider: Provider,
  secret: string,
  target: UpstreamTarget,
): Promise<ProbeAnswer | null> {
  const path = probePath(provider);
  if (path === null) return null;
  const url = new URL(path, target.baseUrl.endsWith('/') ? target.baseUrl : `${target.baseUrl}/`);
  try {
    const response = await request(url, {
      method: 'GET',
      headers: { 'x-api-key': secret, 'anthropic-version': ANTHROPIC_VERSION },
      headersTimeout: target.timeoutMs,
      bodyTimeout: target.timeoutMs,
      signal: AbortSignal.timeout(target.timeoutMs),
      ...(target.dispatcher ? { dispatcher: target.dispatcher } : {}),
    });
    const header = response.headers['retry-after'];
    await response.body.dump();
    return {
      kind: 'status',
      status: response.statusCode,
      retryAfter: Array.isArray(header) ? header[0] : header,
    };
  } catch (cause) {
    return { kind: 'network', cause, url };
  }
}

/** Asks the upstream whether the key is good; maps each answer to a friendly, actionable error. */
export async function probeCredential(
  provider: Provider,
  secret: string,
  target: UpstreamTarget,
): Promise<ValidationOutcome> {
  const answer = await probeStatus(provider, secret, target);
  if (answer === null) return { ok: true };
  if (answer.kind === 'network') {
    const { cause, url } = answer;
    return {
      ok: false,
      error: new AppError(
        'upstream_unreachable',
        `could not reach Anthropic at ${url.origin} to check the key (${describeNetworkError(cause)}); check the network or pass --no-validate`,
        { network: describeNetworkError(cause) },
      ),
    };
  }
  const { status, retryAfter } = answer;
  if (status >= 200 && status < 300) return { ok: true };
  if (status === 401 || status === 403) {
    return {
      ok: false,
      error: new AppError(
        'credential_rejected',
        'Anthropic rejected this key (invalid, revoked or lacking permission); nothing was stored',
      ),
    };
  }
  if (status === 429) {
    const wait = retryAfter ? ` in ${retryAfter} s` : ' later';
    return {
      ok: false,
      error: new AppError(
        'upstream_rate_limited',
        `Anthropic is rate limiting this key; try again${wait}, or pass --no-validate`,
        { retry_after_s: retryAfter ? Number(retryAfter) : null },
      ),
    };
  }
  return {
    ok: false,
    error: new AppError(
      'upstream_error',
      `Anthropic answered ${status} while checking the key; try again later or pass --no-validate`,
      { status },
    ),
  };
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
