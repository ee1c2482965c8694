// Anthropic wire format pieces: error bodies, usage objects and SSE events, precomputed where constant.

import type { ServerResponse } from 'node:http';

const ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  409: 'conflict_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

const DEFAULT_MESSAGES: Readonly<Record<number, string>> = {
  429: 'Number of requests has exceeded your per-minute rate limit',
  500: 'Internal server error',
  504: 'Request timed out',
  529: 'Overloaded',
};

export function errorTypeFor(status: number): string {
  return ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

export function defaultErrorMessage(status: number): string {
  return DEFAULT_MESSAGES[status] ?? errorTypeFor(status).replace(/_/g, ' ');
}

/** `{"type":"error","error":{type,message,details?},"request_id"}` as a string. */
export function errorBody(status: number, message: string, requestId: string, errorCode?: string): string {
  const details = errorCode ? `,"details":{"error_code":${JSON.stringify(errorCode)}}` : '';
  return `{"type":"error","error":{"type":"${errorTypeFor(status)}","message":${JSON.stringify(message)}${details}},"request_id":"${requestId}"}`;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  requestId: string,
  body: string,
  extraHeaders?: Record<string, string>,
): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'request-id': requestId,
    'content-length': Buffer.byteLength(body),
    ...extraHeaders,
  });
  res.end(body);
}

export function sendError(res: ServerResponse, status: number, message: string, requestId: string): void {
  sendJson(res, status, requestId, errorBody(status, message, requestId));
}

export interface MessageUsage {
  input: number;
  read: number;
  creation5m: number;
  creation1h: number;
  webSearch: number;
  webFetch: number;
}

function cacheFields(u: MessageUsage): string {
  return (
    `"cache_creation_input_tokens":${u.creation5m + u.creation1h},"cache_read_input_tokens":${u.read},` +
    `"cache_creation":{"ephemeral_5m_input_tokens":${u.creation5m},"ephemeral_1h_input_tokens":${u.creation1h}}`
  );
}

function serverToolUse(u: MessageUsage): string {
  return `"server_tool_use":{"web_search_requests":${u.webSearch},"web_fetch_requests":${u.webFetch}}`;
}

/** Full usage as in a non-streaming Message. */
export function usageJson(u: MessageUsage, outputTokens: number): string {
  return `{"input_tokens":${u.input},${cacheFields(u)},"output_tokens":${outputTokens},${serverToolUse(u)},"service_tier":"standard"}`;
}

export function messageJson(
  id: string,
  model: string,
  text: string,
  stopReason: string,
  u: MessageUsage,
  outputTokens: number,
): string {
  return (
    `{"id":"${id}","type":"message","role":"assistant","model":${JSON.stringify(model)},` +
    `"content":[{"type":"text","text":${JSON.stringify(text)}}],"stop_reason":"${stopReason}","stop_sequence":null,` +
    `"usage":${usageJson(u, outputTokens)}}`
  );
}

export function sse(type: string, data: string): string {
  return `event: ${type}\ndata: ${data}\n\n`;
}

export const SSE_HEADERS_BASE = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } as const;
export const EVENT_BLOCK_START = sse(
  'content_block_start',
  '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
);
export const EVENT_PING = sse('ping', '{"type":"ping"}');
export const EVENT_BLOCK_STOP = sse('content_block_stop', '{"type":"content_block_stop","index":0}');
export const EVENT_MESSAGE_STOP = sse('message_stop', '{"type":"message_stop"}');
export const EVENT_OVERLOADED = sse(
  'error',
  '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
);

export function eventMessageStart(id: string, model: string, u: MessageUsage): string {
  return sse(
    'message_start',
    `{"type":"message_start","message":{"id":"${id}","type":"message","role":"assistant","model":${JSON.stringify(model)},` +
      `"content":[],"stop_reason":null,"stop_sequence":null,` +
      `"usage":{"input_tokens":${u.input},${cacheFields(u)},"output_tokens":1,"service_tier":"standard"}}}`,
  );
}

/** Cumulative final usage, repeating input and cache figures like the real API. */
export function eventMessageDelta(stopReason: string, u: MessageUsage, outputTokens: number): string {
  return sse(
    'message_delta',
    `{"type":"message_delta","delta":{"stop_reason":"${stopReason}","stop_sequence":null},` +
      `"usage":{"input_tokens":${u.input},${cacheFields(u)},"output_tokens":${outputTokens},${serverToolUse(u)}}}`,
  );
}

const deltaEvents = new Map<number, string>();

/** A text_delta carrying `tokens` words "tok "; memoised per size so streams reuse the same string. */
export function eventTextDelta(tokens: number): string {
  let event = deltaEvents.get(tokens);
  if (event === undefined) {
    event = sse(
      'content_block_delta',
      `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"${'tok '.repeat(tokens)}"}}`,
    );
    if (deltaEvents.size < 1000) deltaEvents.set(tokens, event);
  }
  return event;
}
