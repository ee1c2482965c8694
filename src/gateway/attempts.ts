// Sending one request upstream with failover. Retries only where they cannot double-bill or hammer:
// a connection that failed before the request was sent, or a 529/5xx answer; a 429 moves on to a
// credential of a different pool; a 401 moves on and asks for the credential to be checked (it is
// marked invalid only if its own validation call confirms it: one request's 401 cannot take a shared
// credential out). Never after a success began streaming (the caller owns the response from then on).
// Total time is capped. What an upstream error sends back is scrubbed of every secret (scrub.ts) and
// of the org's own Anthropic rate-limit headers before anyone sees it.
import type { Dispatcher } from 'undici';
import type { GatewayError } from './anthropic-errors.js';
import type { CredentialSource, UpstreamCredential } from './credential-pool.js';
import { buildScrubTable, redact, redactText, type ScrubTable } from './scrub.js';
import type { Cancel, HeaderList, Upstream, UpstreamOutcome } from './upstream.js';

export interface AttemptPolicy {
  readonly maxRetries: number;
  /** Retries stop once this much time has passed since the first attempt. */
  readonly budgetMs: number;
  readonly backoffMs: number;
}

export interface FailedAttempt {
  readonly credential: UpstreamCredential;
  readonly status: number;
  readonly outcome: string;
  readonly upstreamRequestId: string | null;
  readonly startedAt: number;
  readonly endedAt: number;
}

export type CallResult =
  | {
      kind: 'success';
      response: Dispatcher.ResponseData;
      credential: UpstreamCredential;
      attempts: number;
      startedAt: number;
    }
  /** An upstream error answer to pass on (body already read and scrubbed). */
  | {
      kind: 'upstream-error';
      status: number;
      headers: Record<string, string>;
      body: Buffer;
      attempts: number;
      /** The level of the credential whose answer this is (x-tollgate-credential-source). */
      source: CredentialSource;
    }
  | { kind: 'gateway-error'; error: GatewayError; attempts: number }
  | { kind: 'aborted'; attempts: number };

export interface CallInput {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** Without the credential (added per attempt). */
  readonly headers: HeaderList;
  readonly body: Buffer | null;
  readonly candidates: readonly UpstreamCredential[];
  readonly signal: Cancel | null;
  /** Secrets to scrub from upstream error bodies (the caller's own key, for one). */
  readonly scrub: readonly string[];
}

export interface AttemptDeps {
  readonly upstream: Upstream;
  readonly policy: AttemptPolicy;
  readonly now: () => number;
  readonly onFailedAttempt: (attempt: FailedAttempt) => void;
  /** An upstream 401: schedules the credential's confirmation check; never awaited by the request. */
  readonly onUnauthorized: (credential: UpstreamCredential) => void;
  /** The scrub table of every loaded credential (built once per load; only error paths ask for it). */
  readonly scrubTable: () => Promise<ScrubTable>;
}

/** The per-request attempt deps: the gateway's shared ones plus this request's clock and failure hook. */
export function attemptDeps(
  shared: Omit<AttemptDeps, 'onFailedAttempt' | 'now'>,
  now: () => number,
  onFailedAttempt: AttemptDeps['onFailedAttempt'],
): AttemptDeps {
  // Spelled out, not spread: this runs per request (see DEVELOPERS.md on the hot path).
  return {
    upstream: shared.upstream,
    policy: shared.policy,
    onUnauthorized: shared.onUnauthorized,
    scrubTable: shared.scrubTable,
    now,
    onFailedAttempt,
  };
}

const MAX_ERROR_BODY = 1024 * 1024;
// Only these pass; the upstream's `anthropic-ratelimit-*` headers describe the org's own Anthropic
// limits, not the caller's (callers see Tollgate's limits only).
const PASS_ERROR_HEADERS = ['content-type', 'retry-after', 'request-id', 'x-should-retry'];

export async function callUpstream(deps: AttemptDeps, input: CallInput): Promise<CallResult> {
  const first = deps.now();
  const deadline = first + deps.policy.budgetMs;
  // Created on the first failure that needs them: most requests succeed on the first attempt.
  let excluded: Set<string> | null = null;
  let limitedPools: Set<string> | null = null;
  let pointer = 0;
  let attempts = 0;
  let last: CallResult | null = null;

  const next = (advance: boolean): UpstreamCredential | null => {
    const n = input.candidates.length;
    for (let i = 0; i < n; i++) {
      const c = input.candidates[(pointer + (advance ? 1 : 0) + i) % n];
      if (c && !excluded?.has(c.id) && !limitedPools?.has(c.pool)) {
        pointer = input.candidates.indexOf(c);
        return c;
      }
    }
    return null;
  };

  let credential = input.candidates[0] ?? null;
  while (credential && attempts <= deps.policy.maxRetries) {
    attempts++;
    const startedAt = deps.now();
    const outcome: UpstreamOutcome = await deps.upstream.send({
      method: input.method,
      path: input.path,
      headers: [...input.headers, 'x-api-key', credential.secret],
      body: input.body,
      signal: input.signal,
    });
    if (outcome.kind === 'aborted') return { kind: 'aborted', attempts };
    if (outcome.kind === 'response') {
      const status = outcome.response.statusCode;
      if (status >= 200 && status < 300) {
        return { kind: 'success', response: outcome.response, credential, attempts, startedAt };
      }
    }
    const failed = credential;
    const fail = (status: number, what: string, requestId: string | null) =>
      deps.onFailedAttempt({
        credential: failed,
        status,
        outcome: what,
        upstreamRequestId: requestId,
        startedAt,
        endedAt: deps.now(),
      });

    if (outcome.kind === 'connect-failed') {
      fail(0, 'connect_failed', null);
      last = {
        kind: 'gateway-error',
        error: { status: 502, type: 'api_error', message: 'the upstream API could not be reached' },
        attempts,
      };
      if (!(await pause(deps, deadline, attempts))) break;
      credential = next(true);
      continue;
    }
    if (outcome.kind === 'failed-after-send') {
      // The request may have been processed and billed: never retried.
      fail(0, outcome.timeout ? 'timeout' : 'connection_lost', null);
      const error: GatewayError = outcome.timeout
        ? { status: 504, type: 'timeout_error', message: 'the upstream API did not answer in time' }
        : { status: 502, type: 'api_error', message: 'the connection to the upstream API was lost' };
      return withNoRetry({ kind: 'gateway-error', error, attempts });
    }

    const response = outcome.response;
    const status = response.statusCode;
    const tables = await scrubTables(deps, input.scrub, credential.secret);
    const body = redact(await readBounded(response.body), tables);
    const upstreamId = headerOf(response.headers, 'request-id');
    // The request id goes into the usage record (a log): scrubbed like the body.
    const requestId = upstreamId === null ? null : redactText(upstreamId, tables);
    fail(status, 'upstream_error', requestId);
    last = {
      kind: 'upstream-error',
      status,
      headers: passHeaders(response.headers, tables),
      body,
      attempts,
      source: credential.pool,
    };
    if (status === 401) {
      excluded ??= new Set();
      excluded.add(credential.id);
      deps.onUnauthorized(credential);
      credential = next(true);
      continue;
    }
    if (status === 429) {
      limitedPools ??= new Set();
      limitedPools.add(credential.pool);
      credential = next(true);
      continue;
    }
    if (status >= 500) {
      if (!(await pause(deps, deadline, attempts))) break;
      credential = next(true);
      continue;
    }
    break; // other 4xx: the request itself is wrong; retrying cannot help
  }
  const result = last ?? {
    kind: 'gateway-error',
    error: { status: 502, type: 'api_error', message: 'no upstream credential could serve the request' },
    attempts,
  };
  return attempts > 1 ? withNoRetry(result) : result;
}

/** After Tollgate retried, tell clients not to multiply the attempts. */
function withNoRetry(result: CallResult): CallResult {
  if (result.kind === 'upstream-error')
    return { ...result, headers: { ...result.headers, 'x-should-retry': 'false' } };
  if (result.kind === 'gateway-error') {
    return {
      ...result,
      error: { ...result.error, headers: { ...result.error.headers, 'x-should-retry': 'false' } },
    };
  }
  return result;
}

/** Waits before a retry with exponential backoff; false when the time budget would be exceeded. */
async function pause(deps: AttemptDeps, deadline: number, attempts: number): Promise<boolean> {
  if (attempts > deps.policy.maxRetries) return false;
  const wait = deps.policy.backoffMs * 2 ** (attempts - 1);
  if (deps.now() + wait >= deadline) return false;
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  return true;
}

async function readBounded(body: Dispatcher.ResponseData['body']): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > MAX_ERROR_BODY) {
      body.destroy();
      break;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** `bytes` an upstream wrote in an error (e.g. a mid-stream `error` event), scrubbed like an error body. */
export async function scrubUpstream(
  deps: Pick<AttemptDeps, 'scrubTable'>,
  presented: readonly string[],
  used: string,
  bytes: Buffer,
): Promise<Buffer> {
  return redact(bytes, await scrubTables(deps, presented, used));
}

/**
 * The tables to scrub an upstream error with: every loaded credential's (shared, built once per load)
 * and one of this request's own secrets (the caller's presented key, the credential just used).
 */
async function scrubTables(
  deps: Pick<AttemptDeps, 'scrubTable'>,
  presented: readonly string[],
  used: string,
): Promise<ScrubTable[]> {
  const own = buildScrubTable([...presented, used]);
  try {
    return [await deps.scrubTable(), own];
  } catch {
    // The credentials could not be loaded: this request's own secrets are still scrubbed.
    return [own];
  }
}

export function headerOf(headers: Dispatcher.ResponseData['headers'], name: string): string | null {
  const value = headers[name];
  if (Array.isArray(value)) return value[0] ?? null;
  return value ?? null;
}

function passHeaders(
  headers: Dispatcher.ResponseData['headers'],
  tables: readonly ScrubTable[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PASS_ERROR_HEADERS) {
    const value = headerOf(headers, name);
    if (value !== null) out[name] = redactText(value, tables);
  }
  return out;
}
