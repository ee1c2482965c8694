// Writing gateway answers on the raw response: errors in Anthropic's shape, passed-on upstream errors.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { errorBody, type GatewayError } from './anthropic-errors.js';
import type { CallResult } from './attempts.js';

export function sendError(res: ServerResponse, error: GatewayError, requestId: string): void {
  if (res.headersSent || res.destroyed) return;
  const body = errorBody(error, requestId);
  res.writeHead(error.status, {
    ...error.headers,
    'content-type': 'application/json',
    'request-id': requestId,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function sendUpstreamError(
  res: ServerResponse,
  result: Extract<CallResult, { kind: 'upstream-error' }>,
  requestId: string,
): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(result.status, {
    'content-type': 'application/json',
    ...result.headers,
    'x-tollgate-request-id': requestId,
    'content-length': result.body.length,
  });
  res.end(result.body);
}

// Headers forwarded upstream: an allow-list, so the client's auth, hop-by-hop and proxy headers never pass.
const FORWARDED = [
  'anthropic-version',
  'anthropic-beta',
  'content-type',
  'accept',
  'user-agent',
  'x-claude-code-session-id',
];

export function upstreamHeaders(client: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of FORWARDED) {
    const value = client[name];
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(',') : value;
  }
  out['anthropic-version'] ??= '2023-06-01';
  out['content-type'] ??= 'application/json';
  for (const [name, value] of Object.entries(client)) {
    if (name.startsWith('x-stainless-') && typeof value === 'string') out[name] = value;
  }
  return out;
}
