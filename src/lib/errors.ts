// One error model for the whole program: an AppError carries a stable code from a single union.
// Expected refusals in hot paths are returned as results; AppError is for everything that ends an operation.

export const ERROR_CODES = [
  'invalid_input', // the caller sent something malformed or out of range
  'invalid_config', // tollgate.yml or environment overrides are wrong
  'too_large', // a request body exceeds its limit
  'not_found', // the named object does not exist (or the actor may not see it)
  'conflict', // a uniqueness rule would be broken (duplicate name, already initialised)
  'unauthenticated', // missing/unknown/revoked/expired credentials of the caller
  'forbidden', // authenticated but not allowed
  'secret_on_argv', // a secret was passed as a command-line argument
  'master_key_invalid', // master key missing, short, malformed or not the one the data was sealed with
  'decryption_failed', // ciphertext does not open under its record binding
  'credential_rejected', // upstream said the credential is invalid
  'upstream_rate_limited', // upstream answered 429 while validating
  'rate_limited', // the caller made too many attempts (e.g. self-service credential checks); retry later
  'upstream_unreachable', // upstream could not be reached or timed out
  'upstream_error', // upstream answered with an unexpected status
  'redis_unavailable', // the shared Redis (TOLLGATE_REDIS_URL) cannot be reached or does not answer in time
  'audit_broken', // the audit chain does not verify
  'not_initialised', // the home directory has no Tollgate installation
  'internal', // a bug or an unexpected environment failure
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class AppError extends Error {
  override readonly name = 'AppError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isAppError(value: unknown): value is AppError {
  return value instanceof AppError;
}

/** Wraps anything thrown into an AppError without leaking the original message of non-AppErrors. */
export function toAppError(value: unknown): AppError {
  if (isAppError(value)) return value;
  return new AppError('internal', 'internal error', {}, { cause: value });
}

/** Process exit status for each error code: 1 for refusals the user can fix, 2 for usage errors, 3 for integrity. */
export const EXIT_STATUS: Readonly<Record<ErrorCode, number>> = {
  invalid_input: 2,
  invalid_config: 2,
  too_large: 2,
  secret_on_argv: 2,
  not_found: 1,
  conflict: 1,
  unauthenticated: 1,
  forbidden: 1,
  master_key_invalid: 1,
  not_initialised: 1,
  credential_rejected: 1,
  upstream_rate_limited: 1,
  rate_limited: 1,
  upstream_unreachable: 1,
  upstream_error: 1,
  redis_unavailable: 1,
  decryption_failed: 3,
  audit_broken: 3,
  internal: 70,
};
