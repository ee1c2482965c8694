// Checks a GitHub or Linear token before it is stored, with the cheapest call that proves it works:
// GitHub `GET /user`, Linear's GraphQL `{ viewer { id } }`. The base URLs come from tollgate.yml
// (`integrations`), so tests point them at local fakes and nothing reaches the internet.
import { type Dispatcher, request } from 'undici';
import type { Provider } from '../db/schema.js';
import { AppError } from '../lib/errors.js';

export interface IntegrationTargets {
  readonly githubApiUrl: string;
  readonly linearApiUrl: string;
  readonly timeoutMs: number;
  /** The outbound dispatcher (proxy, extra CA: outbound/outbound.ts); absent = undici's global one. */
  readonly dispatcher?: Dispatcher;
}

const NAMES = { github: 'GitHub', linear: 'Linear' } as const;

/** Validates a GitHub or Linear token; a no-op for other providers. Throws a friendly AppError on refusal. */
export async function probeIntegration(
  provider: Provider,
  secret: string,
  targets: IntegrationTargets,
): Promise<void> {
  if (provider !== 'github' && provider !== 'linear') return;
  const name = NAMES[provider];
  const base = provider === 'github' ? targets.githubApiUrl : targets.linearApiUrl;
  const url = new URL(provider === 'github' ? 'user' : 'graphql', base.endsWith('/') ? base : `${base}/`);
  let status: number;
  let body: string;
  try {
    const response = await request(url, {
      method: provider === 'github' ? 'GET' : 'POST',
      headers:
        provider === 'github'
          ? {
              authorization: `Bearer ${secret}`,
              accept: 'application/vnd.github+json',
              'user-agent': 'tollgate',
            }
          : // Linear takes a personal API key bare in Authorization (no scheme).
            { authorization: secret, 'content-type': 'application/json' },
      ...(provider === 'linear' ? { body: JSON.stringify({ query: '{ viewer { id } }' }) } : {}),
      headersTimeout: targets.timeoutMs,
      bodyTimeout: targets.timeoutMs,
      signal: AbortSignal.timeout(targets.timeoutMs),
      ...(targets.dispatcher ? { dispatcher: targets.dispatcher } : {}),
    });
    status = response.statusCode;
    // Bounded read: only Linear's answer is inspected, and only for an `errors` member.
    body = provider === 'linear' ? (await response.body.text()).slice(0, 65_536) : '';
    if (provider === 'github') await response.body.dump();
  } catch {
    throw new AppError(
      'upstream_unreachable',
      `could not reach ${name} at ${url.origin} to check the token; try again later`,
    );
  }
  if (refused(provider, status, body))
    throw new AppError(
      'credential_rejected',
      `${name} rejected this token (invalid, expired or lacking permission); nothing was stored`,
    );
  if (status === 429)
    throw new AppError('upstream_rate_limited', `${name} is rate limiting checks; try again later`);
  if (status < 200 || status >= 300)
    throw new AppError(
      'upstream_error',
      `${name} answered ${status} while checking the token; try again later`,
      {
        status,
      },
    );
}

/**
 * GitHub refuses a token with 401 (403 when it lacks access). Linear's GraphQL endpoint refuses a key
 * with 400 and an `errors` array (AUTHENTICATION_ERROR), sometimes 401; a 200 without a viewer id is no proof.
 */
function refused(provider: 'github' | 'linear', status: number, body: string): boolean {
  if (status === 401 || status === 403) return true;
  if (provider === 'github') return false;
  if (status === 400) return true;
  return status >= 200 && status < 300 && !viewerOk(body);
}

/** Linear answers 200 with `errors` for some refusals; a good key yields `data.viewer.id`. */
function viewerOk(body: string): boolean {
  try {
    const parsed = JSON.parse(body) as { data?: { viewer?: { id?: unknown } } | null; errors?: unknown };
    return parsed.errors === undefined && typeof parsed.data?.viewer?.id === 'string';
  } catch {
    return false;
  }
}
