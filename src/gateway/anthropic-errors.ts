// Refusals and failures of the gateway in Anthropic's error shape, with the headers that steer
// clients (and the official SDK's retry logic) the right way.
export interface GatewayError {
  readonly status: number;
  readonly type: string;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly details?: Readonly<Record<string, unknown>>;
}

export function errorBody(error: GatewayError, requestId: string): string {
  const inner: Record<string, unknown> = { type: error.type, message: error.message };
  if (error.details) inner.details = error.details;
  return JSON.stringify({ type: 'error', error: inner, request_id: requestId });
}

// One body for every authentication failure, so a caller learns nothing about which check failed.
export const UNAUTHENTICATED: GatewayError = {
  status: 401,
  type: 'authentication_error',
  message: 'invalid x-api-key',
};

export const invalidRequest = (message: string): GatewayError => ({
  status: 400,
  type: 'invalid_request_error',
  message,
});
export const permission = (message: string): GatewayError => ({
  status: 403,
  type: 'permission_error',
  message,
});
export const notFound = (message: string): GatewayError => ({
  status: 404,
  type: 'not_found_error',
  message,
});
export const tooLarge = (limit: number): GatewayError => ({
  status: 413,
  type: 'request_too_large',
  message: `request body exceeds ${limit} bytes`,
});
