// One mapper from AppError to HTTP: Anthropic's error shape on /v1/*, {error:{code,message,requestId}} elsewhere.
import type { AppError, ErrorCode } from '../lib/errors.js';
import { redactSecretShapes } from '../lib/redact-text.js';

export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  invalid_input: 400,
  invalid_config: 500,
  too_large: 413,
  secret_on_argv: 400,
  not_found: 404,
  conflict: 409,
  unauthenticated: 401,
  forbidden: 403,
  master_key_invalid: 500,
  not_initialised: 500,
  decryption_failed: 500,
  credential_rejected: 400,
  upstream_rate_limited: 429,
  rate_limited: 429,
  upstream_unreachable: 502,
  upstream_error: 502,
  redis_unavailable: 503,
  audit_broken: 500,
  internal: 500,
};

const ANTHROPIC_TYPE: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  409: 'conflict_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  502: 'api_error',
  504: 'timeout_error',
};

export interface ErrorResponse {
  status: number;
  body: unknown;
}

/** The response for an error; 5xx messages are replaced by a generic text (details go to the log only). */
export function errorResponse(error: AppError, requestId: string, anthropicShape: boolean): ErrorResponse {
  const status = HTTP_STATUS[error.code];
  // A secret sent where an id or name belongs is not echoed back (it would then sit in client logs).
  const message =
    status >= 500 && status !== 502 ? 'internal server error' : redactSecretShapes(error.message);
  if (anthropicShape) {
    return {
      status,
      body: {
        type: 'error',
        error: { type: ANTHROPIC_TYPE[status] ?? 'api_error', message },
        request_id: requestId,
      },
    };
  }
  const fields = error.details.fields;
  return {
    status,
    body: {
      error: {
        code: error.code,
        message,
        requestId,
        ...(Array.isArray(fields) && status < 500 ? { fields } : {}),
      },
    },
  };
}
