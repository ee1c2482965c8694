// Admin API failures in plain words, as AppErrors. Messages never carry the key, only what to do.
import { AppError } from '../lib/errors.js';

export const ADD_ADMIN_CREDENTIAL = 'tollgate credential add NAME --provider anthropic-admin';

export type AdminFailure = 'invalid_key' | 'no_access' | 'wrong_key_type' | 'beta_not_enabled';

export function noAdminCredential(): AppError {
  return new AppError(
    'not_found',
    `no Anthropic admin key is configured; add one with \`${ADD_ADMIN_CREDENTIAL}\``,
    { reason: 'no_admin_credential' },
  );
}

export function wrongKeyType(): AppError {
  return new AppError(
    'credential_rejected',
    'the stored admin credential is not an Admin API key (admin keys start with sk-ant-admin01-); add one with ' +
      `\`${ADD_ADMIN_CREDENTIAL}\``,
    { reason: 'wrong_key_type' },
  );
}

/** A regular API key (`sk-ant-api…`) stored as the admin key: refused before any call. */
export function looksLikeInferenceKey(secret: string): boolean {
  return secret.startsWith('sk-ant-api');
}

const ADMIN_ONLY = /admin (api|key)/i;
const BETA_OFF = /beta/i;

/**
 * Maps a non-2xx answer to a plain-words error. `message` is Anthropic's `error.message` (never
 * echoed for 5xx); `beta` is set when the call named an `anthropic-beta` feature.
 */
export function adminError(status: number, message: string | null, beta: boolean): AppError {
  const text = message ?? '';
  if (beta && (status === 400 || status === 403 || status === 404) && BETA_OFF.test(text)) {
    return new AppError(
      'forbidden',
      'this Admin API feature is a beta that is not enabled for this organisation; ask Anthropic for access or use the Console',
      { reason: 'beta_not_enabled', status },
    );
  }
  if ((status === 403 || status === 404) && ADMIN_ONLY.test(text)) return wrongKeyType();
  if (status === 401) {
    return new AppError(
      'credential_rejected',
      'Anthropic refused the admin key: it is invalid or has been revoked; add a new one with ' +
        `\`${ADD_ADMIN_CREDENTIAL}\` or rotate it with \`tollgate credential rotate NAME\``,
      { reason: 'invalid_key', status },
    );
  }
  if (status === 403) {
    return new AppError(
      'forbidden',
      'the admin key has no access to this: it lacks the permission, or the organisation does not have the feature',
      { reason: 'no_access', status },
    );
  }
  if (status === 404)
    return new AppError('not_found', `Anthropic found no such object (${text || 'not found'})`, { status });
  if (status === 400 || status === 409 || status === 422) {
    return new AppError('invalid_input', `Anthropic refused the request: ${text || `status ${status}`}`, {
      status,
    });
  }
  if (status === 429) {
    return new AppError(
      'upstream_rate_limited',
      'Anthropic is rate limiting the Admin API; try again later',
      {
        status,
      },
    );
  }
  return new AppError('upstream_error', `Anthropic's Admin API answered ${status}; try again later`, {
    status,
  });
}
