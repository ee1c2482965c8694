// The persisted state of a master-key rotation: one meta row, `master_key_rotation`, written in the
// transaction that starts the rotation and deleted in the one that completes it. It names both keys
// by version, fingerprint and check value (never their bytes) and holds the new key sealed under the
// old one, so every process that holds the old key learns the new key from the database itself.
import { AppError } from '../lib/errors.js';

export const ROTATION_META_KEY = 'master_key_rotation';
/** The binding of the new key sealed under the old one (never a record's binding). */
export const NEXT_KEY_BINDING = 'meta:master-key-next';

export interface KeyLabel {
  readonly version: number;
  readonly fingerprint: string;
  /** masterKeyCheck() of the key: verifies a candidate key without holding it. */
  readonly check: string;
}

export type KeySourceKind = 'home-file' | 'env';

export interface RotationState {
  readonly from: KeyLabel;
  readonly to: KeyLabel;
  /** encodeSealed() of the new key's bytes sealed under `from` (binding NEXT_KEY_BINDING). */
  readonly next: string;
  /** Where the key came from when the rotation started: decides where the new key goes. */
  readonly source: KeySourceKind;
  /** Every record is wrapped under `to` (only the completion remains). */
  readonly rewrapped: boolean;
  readonly startedAt: number;
}

export function serializeRotation(state: RotationState): string {
  return JSON.stringify({ v: 1, ...state });
}

function label(value: unknown): KeyLabel | null {
  if (typeof value !== 'object' || value === null) return null;
  const { version, fingerprint, check } = value as Record<string, unknown>;
  if (!Number.isSafeInteger(version) || typeof fingerprint !== 'string' || typeof check !== 'string')
    return null;
  return { version: version as number, fingerprint, check };
}

export function parseRotation(text: string | null): RotationState | null {
  if (text === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = null;
  }
  const v = (value ?? {}) as Record<string, unknown>;
  const from = label(v.from);
  const to = label(v.to);
  if (
    v.v !== 1 ||
    from === null ||
    to === null ||
    typeof v.next !== 'string' ||
    (v.source !== 'home-file' && v.source !== 'env') ||
    typeof v.rewrapped !== 'boolean' ||
    typeof v.startedAt !== 'number'
  ) {
    throw new AppError(
      'internal',
      `the ${ROTATION_META_KEY} row is malformed; restore the database from a backup`,
    );
  }
  return { from, to, next: v.next, source: v.source, rewrapped: v.rewrapped, startedAt: v.startedAt };
}
