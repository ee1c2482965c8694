// Writing gateway answers on the raw response: errors in Anthropic's shape, passed-on upstream errors.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { errorBody, type GatewayError } from './anthropic-errors.js';
import type { CallResult } from './attempts.js';
import type { HeaderList } from './upstream.js';

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
    'x-tollgate-credential-source': result.source,
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

/** The client's headers that go upstream (the credential is added per attempt). */
export function upstreamHeaders(client: IncomingHttpHeaders): HeaderList {
  const out: string[] = [];
  for (const name of FORWARDED) {
    const value = client[name];
    if (value === undefined) continue;
    out.push(name, Array.isArray(value) ? value.join(',') : value);
  }
  if (client['anthropic-version'] === undefined) out.push('anthropic-version', '2023-06-01');
  if (client['content-type'] === undefined) out.push('content-type', 'application/json');
  for (const name in client) {
    const value = client[name];
    if (name.startsWith('x-stainless-') && typeof value === 'string') out.push(name, value);
  }
  return out;
}
