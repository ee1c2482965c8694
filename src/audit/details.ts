// What an audit entry may carry. Entries reference objects by id (`key_…`, `cred_…`, `usr_…`) and
// describe changes with short non-secret values; a secret (credential, gateway key, admin token,
// password, session) must never reach the audit log, which is kept forever and exported for review.
import { AppError } from '../lib/errors.js';

export type AuditValue = string | number | boolean | null;
export type AuditDetails = Readonly<Record<string, AuditValue>>;

/** Longest string an entry field may hold; anything longer is more likely a payload than a reference. */
export const MAX_AUDIT_STRING = 512;

// Shapes of secrets Tollgate handles: Anthropic keys (`sk-ant-api03-…`, `sk-ant-admin01-…`),
// gateway keys (`tg_…`) and admin tokens (`tga_…`).
const SECRET_PATTERNS: readonly RegExp[] = [
  /sk-ant-[a-z0-9]+-/i,
  /\btg_[A-Za-z0-9]{20,}/,
  /\btga_[A-Za-z0-9]{20,}/,
];

/** True if the string looks like a secret or is too long to be a reference. */
export function looksSecret(text: string): boolean {
  return text.length > MAX_AUDIT_STRING || SECRET_PATTERNS.some((pattern) => pattern.test(text));
}

// The message names the field, never the value: the value is the suspected secret.
function refuse(field: string): never {
  throw new AppError(
    'internal',
    `audit field "${field}" looks like a secret; audit entries reference ids only`,
    {
      field,
    },
  );
}

/** Throws AppError('internal') if a top-level field of an entry looks like a secret. */
export function assertNoSecret(field: string, value: string | null | undefined): void {
  if (value != null && looksSecret(value)) refuse(field);
}

/**
 * Checks and serialises details as JSON with sorted keys. Refuses secret-looking keys and values and
 * non-finite numbers (JSON would silently turn them into null).
 */
export function serializeDetails(details: AuditDetails | undefined): string {
  const entries = Object.entries(details ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [key, value] of entries) {
    if (looksSecret(key)) refuse('details');
    if (typeof value === 'string' && looksSecret(value)) refuse(`details.${key}`);
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new AppError('internal', `audit field "details.${key}" is not a finite number`, { field: key });
    }
  }
  return JSON.stringify(Object.fromEntries(entries));
}

/** Parses stored details for display; a row whose details were tampered into another shape yields {}. */
export function parseDetails(text: string): AuditDetails {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
  const out: Record<string, AuditValue> = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (
      value === null ||
      typeof value === 'string' ||
      typeof value === 'number' ||
      typeof value === 'boolean'
    ) {
      out[key] = value;
    }
  }
  return out;
}
