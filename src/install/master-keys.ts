// Which master keys a process holds, from the key it loaded and the installation's meta rows.
//
// Outside a rotation the loaded key must match `master_key_check`, and it is the version stored in
// `master_key_version` (1 before any rotation). During a rotation (see rotation-state.ts) meta already
// names the new key as current; a process that loaded
// - the previous key (an env-supplied key not yet switched, or the home key file before the new key
//   was written): its key matches the rotation's `from` check and it unwraps the new key from the
//   rotation row, so it holds both;
// - the new key: it holds only the new one, plus the previous one from the backup file
//   `master.key.v<N>` when the key lives in the home directory. Without the previous key it may start
//   only once every record is re-wrapped (`rewrapped`), else it could not read the rest.
// Any other key is refused before anything is written.
import { existsSync } from 'node:fs';
import { open } from '../crypto/envelope.js';
import { type KeyRing, keyRing, withVersion } from '../crypto/key-ring.js';
import { loadMasterKey, type MasterKey, parseMasterKey, verifyMasterKeyCheck } from '../crypto/master-key.js';
import type { Db } from '../db/connect.js';
import { AppError } from '../lib/errors.js';
import { readMeta } from './meta.repo.js';
import { NEXT_KEY_BINDING, parseRotation, ROTATION_META_KEY, type RotationState } from './rotation-state.js';
import { decodeSealed } from './sealed-text.js';

export interface KeyMeta {
  readonly check: string;
  readonly version: number;
  readonly rotation: RotationState | null;
}

/** The key rows of meta; null when the database holds no installation. */
export async function readKeyMeta(db: Db): Promise<KeyMeta | null> {
  const check = await readMeta(db, 'master_key_check');
  if (check === null) return null;
  const version = Number((await readMeta(db, 'master_key_version')) ?? '1');
  return { check, version, rotation: parseRotation(await readMeta(db, ROTATION_META_KEY)) };
}

/** `<home key file>.v<N>`: the previous home key, kept while (and after) a rotation replaces it. */
export function backupKeyPath(defaultFile: string, version: number): string {
  return `${defaultFile}.v${version}`;
}

/** Loads a backup key file, or null when there is none. */
export async function loadBackupKey(defaultFile: string, version: number): Promise<MasterKey | null> {
  const path = backupKeyPath(defaultFile, version);
  if (!existsSync(path)) return null;
  return withVersion(await loadMasterKey({ defaultFile: path }), version);
}

/** The new key of a rotation, unwrapped from its row with the previous key. */
export function unwrapNextKey(previous: MasterKey, state: RotationState): MasterKey {
  const bytes = open(withVersion(previous, state.from.version), NEXT_KEY_BINDING, decodeSealed(state.next));
  try {
    const next = parseMasterKey(bytes.toString('base64'), 'the rotation row', state.to.version);
    if (!verifyMasterKeyCheck(next, state.to.check)) {
      throw new AppError(
        'decryption_failed',
        'the rotation row holds a key that does not match its check value',
      );
    }
    return next;
  } finally {
    bytes.fill(0);
  }
}

function wrongKey(): AppError {
  return new AppError(
    'master_key_invalid',
    'the master key does not belong to this installation; nothing was changed',
  );
}

/**
 * The keys of a process that loaded `loaded`. `previousKey` finds the previous key of a rotation
 * elsewhere (the home backup file); null when the key came from the environment.
 */
export async function resolveKeyRing(
  loaded: MasterKey,
  meta: KeyMeta,
  previousKey: ((version: number) => Promise<MasterKey | null>) | null,
): Promise<KeyRing> {
  const rotation = meta.rotation;
  if (verifyMasterKeyCheck(loaded, meta.check)) {
    const current = withVersion(loaded, meta.version);
    if (rotation === null) return keyRing(current);
    const previous = previousKey ? await previousKey(rotation.from.version) : null;
    if (previous !== null && verifyMasterKeyCheck(previous, rotation.from.check)) {
      return keyRing(current, [previous]);
    }
    if (rotation.rewrapped) return keyRing(current);
    throw new AppError(
      'master_key_invalid',
      `a master-key rotation is still re-wrapping records under key version ${rotation.to.version}; ` +
        `until \`tollgate master-key rotate\` (run with the previous key, fingerprint ${rotation.from.fingerprint}) ` +
        'has re-wrapped every record, start with the previous key; nothing was changed',
    );
  }
  if (rotation !== null && verifyMasterKeyCheck(loaded, rotation.from.check)) {
    const previous = withVersion(loaded, rotation.from.version);
    return keyRing(unwrapNextKey(previous, rotation), [previous]);
  }
  throw wrongKey();
}
