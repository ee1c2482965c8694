// Fault selection (per-request directive → one-shot queue → default) and the generic status fault answer.

import type { ServerResponse } from 'node:http';
import type { Fault, FaultMatch } from './types.js';
import { defaultErrorMessage, errorBody, sendJson } from './wire.js';

function int(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && Number.isInteger(n) && n >= 0 ? n : fallback;
}

/**
 * Turns `[[fake fault=NAME key=value ...]]` into a Fault. NAME is status (with status=, retry_after=,
 * error_code=), a bare status code (`fault=429`), reset, hang, midstream-error / reset-midstream (with
 * after_tokens=), or slow-stream (with delay_ms=). camelCase parameter names are accepted too.
 */
export function directiveFault(name: string, params: Record<string, string>): Fault | null {
  const afterTokens = int(params.after_tokens ?? params.afterTokens, 0);
  switch (name) {
    case 'reset':
      return { kind: 'reset' };
    case 'hang':
      return { kind: 'hang' };
    case 'midstream-error':
      return { kind: 'midstream-error', afterTokens };
    case 'reset-midstream':
      return { kind: 'reset-midstream', afterTokens };
    case 'slow-stream':
      return { kind: 'slow-stream', delayMs: int(params.delay_ms ?? params.delayMs, 50) };
    default: {
      const status = name === 'status' ? int(params.status, 500) : /^\d{3}$/.test(name) ? Number(name) : 0;
      if (status < 400) return null;
      const retry = params.retry_after ?? params.retryAfterS;
      const errorCode = params.error_code ?? params.errorCode;
      return {
        kind: 'status',
        status,
        ...(retry !== undefined ? { retryAfterS: int(retry, 1) } : {}),
        ...(errorCode !== undefined ? { errorCode } : {}),
      };
    }
  }
}

interface Queued {
  fault: Fault;
  match: FaultMatch | undefined;
}

export interface FaultBook {
  enqueue(fault: Fault, match?: FaultMatch): void;
  setDefault(fault: Fault | null): void;
  /** Takes the first matching queued fault, else the default; null when none applies. */
  take(apiKey: string | null, path: string): Fault | null;
  clear(): void;
}

export function createFaultBook(): FaultBook {
  const queue: Queued[] = [];
  let fallback: Fault | null = null;
  return {
    enqueue(fault, match) {
      queue.push({ fault, match });
    },
    setDefault(fault) {
      fallback = fault;
    },
    take(apiKey, path) {
      if (queue.length > 0) {
        const index = queue.findIndex(
          ({ match }) =>
            (match?.apiKey === undefined || match.apiKey === apiKey) &&
            (match?.path === undefined || match.path === path) &&
            (match?.pathPrefix === undefined || path.startsWith(match.pathPrefix)),
        );
        const found = index >= 0 ? queue.splice(index, 1)[0] : undefined;
        if (found) return found.fault;
      }
      return fallback;
    },
    clear() {
      queue.length = 0;
      fallback = null;
    },
  };
}

const RATE_LIMIT_REQUESTS = '50';

/** Answers a `status` fault with Anthropic's error body; 429 adds retry-after and ratelimit headers. */
export function sendStatusFault(
  res: ServerResponse,
  fault: Extract<Fault, { kind: 'status' }>,
  requestId: string,
  nowMs: number,
): void {
  const { status } = fault;
  const headers: Record<string, string> = {};
  if (status === 429) {
    const retryAfterS = fault.retryAfterS === undefined ? (fault.errorCode ? null : 1) : fault.retryAfterS;
    if (retryAfterS !== null) headers['retry-after'] = String(retryAfterS);
    headers['anthropic-ratelimit-requests-limit'] = RATE_LIMIT_REQUESTS;
    headers['anthropic-ratelimit-requests-remaining'] = '0';
    headers['anthropic-ratelimit-requests-reset'] = new Date(
      nowMs + (retryAfterS ?? 60) * 1000,
    ).toISOString();
  } else if (fault.retryAfterS !== undefined && fault.retryAfterS !== null) {
    headers['retry-after'] = String(fault.retryAfterS);
  }
  Object.assign(headers, fault.headers);
  const body =
    fault.body !== undefined
      ? JSON.stringify(fault.body)
      : errorBody(status, fault.message ?? defaultErrorMessage(status), requestId, fault.errorCode);
  sendJson(res, status, requestId, body, headers);
}
