// `tollgate master-key rotate`: re-wraps every data key under a new master key while servers keep
// serving from the same database. The steps, each one crash-safe (kill -9 anywhere, then run again):
//
// 1. start, one transaction: the rotation row (both keys' versions, fingerprints and check values,
//    the new key sealed under the previous one), meta's check and version naming the new key, the
//    pepper re-wrapped, the audit anchor re-MAC'd under the new key's anchor key, `master_key.rotate`
//    start audited, an 'org' change announced. Every process holding the previous key can unwrap the
//    new one from the row; a process that has not yet learned it fails its next audited change at
//    the anchor (rolled back: nothing sealed under the previous key commits after the start) and
//    learns it then (see context.ts), a server also on the change feed.
// 2. home key file only: the new key replaces master.key, the previous one kept in master.key.v<N>.
// 3. re-wrap: records still under the previous version, a batch per transaction, each record
//    flipped from the exact wrapped key read (compare-and-set: a record rotated meanwhile is read again).
// 4. rewrapped: marked in the row.
// 5. complete, one transaction: leftovers re-wrapped, the row deleted (the new key no longer sealed
//    under the previous one), `master_key.rotate` complete audited. With the home key file this
//    follows at once; with an env-supplied key only when run again with the new key (the operator
//    has switched every process to it), so the previous key keeps working until then.

import { appendAudit, currentAnchor, headOf, rekeyAnchor, upgradeLegacyAnchor } from '../audit/audit.repo.js';
import { anchorMacValid, installationAnchorKey } from '../audit/chain.js';
import { personKeyBinding } from '../audit/person-keys.repo.js';
import { type AuditWitness, createWitness } from '../audit/witness.js';
import { recordChanges } from '../changes/change-feed.js';
import { open, rewrap, type SealedSecret, seal } from '../crypto/envelope.js';
import { type KeyRing, keyRing, openWithRing } from '../crypto/key-ring.js';
import {
  deriveKey,
  generateMasterKeyText,
  loadMasterKey,
  type MasterKey,
  masterKeyCheck,
  parseMasterKey,
} from '../crypto/master-key.js';
import { type Db, openDatabase } from '../db/connect.js';
import { migrateToLatest } from '../db/migrate.js';
import type { AuditRow } from '../db/schema.js';
import { type Tx, writeTransaction } from '../db/tx.js';
import type { Clock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import type { Actor } from './context.js';
import { replaceHomeKey } from './home-key-file.js';
import { type InstallationConfig, previousKeySource } from './installation.js';
import { readKeyMeta, resolveKeyRing } from './master-keys.js';
import { readMeta, writeMeta } from './meta.repo.js';
import {
  type KeyLabel,
  type KeySourceKind,
  NEXT_KEY_BINDING,
  ROTATION_META_KEY,
  type RotationState,
  serializeRotation,
} from './rotation-state.js';
import { decodeSealed, encodeSealed } from './sealed-text.js';
import { listLiveInstances } from './serve-lease.js';

const PEPPER_BINDING = 'meta:pepper';
export const ROTATE_BATCH = 100;

/** Where a test may stop the command (TOLLGATE_TEST_ROTATE_PAUSE_AFTER): a step, or N records. */
export type PausePoint = 'started' | 'key-written' | 'rewrapped' | number;

export interface RotateOptions {
  readonly clock: Clock;
  readonly actor: Actor;
  readonly batchSize?: number;
  /** Test hook: called once at this point (the CLI prints a line and waits to be killed). */
  readonly pause?: { readonly at: PausePoint; readonly fn: () => Promise<void> };
  /** Called with the new key when the operator must be given it (env-supplied key), before re-wrapping. */
  readonly onNewKey?: (text: string, state: RotationState) => Promise<void> | void;
  /** Where a failed audit witness write is reported (the change itself has committed). */
  readonly onWitnessError?: (message: string) => void;
}

export interface RotateResult {
  readonly from: KeyLabel;
  readonly to: KeyLabel;
  readonly source: KeySourceKind;
  /** Whether this run started the rotation (false: it resumed or completed one). */
  readonly started: boolean;
  readonly rewrapped: number;
  readonly completed: boolean;
  /** The home key's backup file (home key file only). */
  readonly backupFile: string | null;
}

export function labelOf(master: MasterKey): KeyLabel {
  return { version: master.version, fingerprint: master.fingerprint, check: masterKeyCheck(master) };
}

function sourceOf(cfg: InstallationConfig): KeySourceKind {
  return cfg.masterKey.inline !== undefined || cfg.masterKey.file !== undefined ? 'env' : 'home-file';
}

export async function rotateMasterKey(cfg: InstallationConfig, opts: RotateOptions): Promise<RotateResult> {
  const loaded = await loadMasterKey(cfg.masterKey);
  const db = openDatabase(cfg.database);
  try {
    return await rotateIn(cfg, db, loaded, opts);
  } finally {
    await db.close();
  }
}

async function rotateIn(
  cfg: InstallationConfig,
  db: Db,
  loaded: MasterKey,
  opts: RotateOptions,
): Promise<RotateResult> {
  const orgId = await readMeta(db, 'org_id');
  const sealedPepper = await readMeta(db, 'pepper');
  const meta = await readKeyMeta(db);
  if (orgId === null || sealedPepper === null || meta === null) {
    throw new AppError(
      'not_initialised',
      'the database has no Tollgate installation: run `tollgate init` first',
    );
  }
  // Refuses a key that is neither the current one nor a rotation's previous one: nothing written.
  let ring = await resolveKeyRing(loaded, meta, previousKeySource(cfg));
  await migrateToLatest(db);
  const pause = async (point: PausePoint) => {
    if (opts.pause && opts.pause.at === point) await opts.pause.fn();
  };
  const witness = cfg.audit?.witness_path
    ? createWitness(cfg.audit.witness_path, orgId, opts.onWitnessError ?? (() => undefined))
    : null;
  // An anchor still in the legacy format is upgraded first, as opening the installation would.
  {
    const pepper = openWithRing(ring, PEPPER_BINDING, decodeSealed(sealedPepper));
    const legacyKey = deriveKey(ring.current, 'audit-anchor');
    const anchorKey = installationAnchorKey(legacyKey, orgId, pepper);
    pepper.fill(0);
    const anchor = await currentAnchor(db);
    if (anchor && !anchorMacValid(anchorKey, anchor) && anchorMacValid(legacyKey, anchor)) {
      await writeTransaction(db, (tx) => upgradeLegacyAnchor(tx, db.dialect, legacyKey, anchorKey));
    }
  }
  const audited = async (fn: (tx: Tx, anchorKey: Buffer) => Promise<AuditRow>, anchorKey: Buffer) => {
    const row = await writeTransaction(db, (tx) => fn(tx, anchorKey));
    await witness?.record(headOf(row, anchorKey));
  };

  let state = meta.rotation;
  const started = state === null;
  if (state === null) {
    const previous = ring.current;
    const nextText = generateMasterKeyText();
    const next = parseMasterKey(nextText, 'the new master key', previous.version + 1);
    const pepper = open(previous, PEPPER_BINDING, decodeSealed(sealedPepper));
    const newAnchor = anchorKeyOf(next, orgId, pepper);
    const oldAnchor = anchorKeyOf(previous, orgId, pepper);
    pepper.fill(0);
    const fresh: RotationState = {
      from: labelOf(previous),
      to: labelOf(next),
      next: encodeSealed(seal(previous, NEXT_KEY_BINDING, next.key)),
      source: sourceOf(cfg),
      rewrapped: false,
      startedAt: opts.clock(),
    };
    await audited(async (tx) => {
      // The anchor is locked first: a concurrent start (or a change by a process with the previous
      // key) waits here and then fails on the re-MAC'd anchor instead of interleaving.
      await rekeyAnchor(tx, db.dialect, oldAnchor, newAnchor);
      const check = await tx
        .selectFrom('meta')
        .select('value')
        .where('key', '=', 'master_key_check')
        .executeTakeFirst();
      const rotating = await tx
        .selectFrom('meta')
        .select('key')
        .where('key', '=', ROTATION_META_KEY)
        .executeTakeFirst();
      if (check?.value !== fresh.from.check || rotating) {
        throw new AppError(
          'conflict',
          'another master-key rotation started meanwhile; run the command again to resume it',
        );
      }
      await writeMeta(tx, ROTATION_META_KEY, serializeRotation(fresh));
      await writeMeta(tx, 'master_key_check', fresh.to.check);
      await writeMeta(tx, 'master_key_version', String(fresh.to.version));
      await writeMeta(
        tx,
        'pepper',
        encodeSealed(rewrap(previous, next, PEPPER_BINDING, decodeSealed(sealedPepper))),
      );
      const row = await appendAudit(tx, db.dialect, newAnchor, {
        actor: opts.actor.actor,
        action: 'master_key.rotate',
        targetType: 'org',
        targetId: orgId,
        details: { step: 'start', ...versions(fresh) },
        at: opts.clock(),
      });
      await recordChanges(tx, db.dialect, [{ kind: 'org', target_id: orgId, at: opts.clock() }]);
      return row;
    }, newAnchor);
    state = fresh;
    ring = keyRing(next, [previous]);
    await pause('started');
  }

  const previous = ring.keys.get(state.from.version) ?? null;
  const current = ring.current;
  // The witness restarts at the re-keyed anchor (again on a resume: a crash may have come first).
  await restartWitness(db, witness, current, orgId);
  let backupFile: string | null = null;
  if (state.source === 'home-file' && sourceOf(cfg) === 'home-file' && previous !== null) {
    backupFile = await replaceHomeKey(cfg.masterKey.defaultFile, previous, current);
    await pause('key-written');
  }
  if (state.source === 'env' && previous !== null && loaded.fingerprint === previous.fingerprint) {
    await opts.onNewKey?.(current.key.toString('base64'), state);
  }

  let count = 0;
  if (!state.rewrapped) {
    if (previous === null) {
      throw new AppError(
        'master_key_invalid',
        'the previous master key is needed to finish re-wrapping; run with it',
      );
    }
    const batch = Math.max(1, opts.batchSize ?? ROTATE_BATCH);
    for (;;) {
      const pass = state;
      const { read, flipped } = await writeTransaction(db, (tx) => rewrapBatch(tx, ring, pass, batch));
      if (read === 0) break;
      const before = count;
      count += flipped;
      const at = opts.pause?.at;
      if (typeof at === 'number' && before < at && count >= at) await pause(at);
    }
    const done: RotationState = { ...state, rewrapped: true };
    await writeTransaction(db, (tx) => writeMeta(tx, ROTATION_META_KEY, serializeRotation(done)));
    state = done;
  }
  await pause('rewrapped');

  // With an env-supplied key the rotation completes only when run with the new key.
  // (A rotation started with the home key file and resumed with an env-supplied key completes only
  // when that key is the new one, as the home file was not written by this run.)
  const completes =
    (state.source === 'home-file' && sourceOf(cfg) === 'home-file') ||
    loaded.fingerprint === current.fingerprint;
  // A supplied key: every live instance must have been restarted with the new key (step 3), or it
  // would not start again once the previous key is refused.
  if (completes && state.source === 'env') await assertRestarted(db, state, opts.clock);
  if (completes) {
    const finished = state;
    const sealedNow = await readMeta(db, 'pepper');
    if (sealedNow === null) throw new AppError('not_initialised', 'the installation lost its pepper row');
    const pepper = open(current, PEPPER_BINDING, decodeSealed(sealedNow));
    const anchorKey = anchorKeyOf(current, orgId, pepper);
    pepper.fill(0);
    await audited(async (tx) => {
      count += (await rewrapBatch(tx, ring, finished, Number.MAX_SAFE_INTEGER)).flipped;
      await tx.deleteFrom('meta').where('key', '=', ROTATION_META_KEY).execute();
      const row = await appendAudit(tx, db.dialect, anchorKey, {
        actor: opts.actor.actor,
        action: 'master_key.rotate',
        targetType: 'org',
        targetId: orgId,
        details: { step: 'complete', ...versions(finished) },
        at: opts.clock(),
      });
      await recordChanges(tx, db.dialect, [{ kind: 'org', target_id: orgId, at: opts.clock() }]);
      return row;
    }, anchorKey);
  }
  return {
    from: state.from,
    to: state.to,
    source: state.source,
    started,
    rewrapped: count,
    completed: completes,
    backupFile,
  };
}

/** Refuses (changing nothing) while a live instance was started with a key older than the new one. */
async function assertRestarted(db: Db, state: RotationState, clock: Clock): Promise<void> {
  const behind = (await listLiveInstances(db, clock)).filter(
    (i) => i.masterKeyVersion !== null && i.masterKeyVersion < state.to.version,
  );
  if (behind.length === 0) return;
  const which = behind.map((i) => `${i.host} pid ${i.pid}`).join(', ');
  throw new AppError(
    'conflict',
    `${behind.length} running Tollgate process${behind.length === 1 ? ' was' : 'es were'} started with the previous master key (version ${state.from.version}) and would not start again once the rotation completes: ${which}. Restart each with the new key (step 3), then run \`tollgate master-key rotate\` again with the new key. The rotation was not completed`,
  );
}

async function restartWitness(db: Db, witness: AuditWitness | null, current: MasterKey, orgId: string) {
  if (witness === null) return;
  const sealed = await readMeta(db, 'pepper');
  const anchor = await currentAnchor(db);
  if (sealed === null || anchor === null) return;
  const pepper = open(current, PEPPER_BINDING, decodeSealed(sealed));
  const key = anchorKeyOf(current, orgId, pepper);
  pepper.fill(0);
  // Only a head that verifies under the new key is witnessed: a forged anchor is never laundered.
  if (anchorMacValid(key, anchor)) await witness.restart(anchor);
}

function anchorKeyOf(master: MasterKey, orgId: string, pepper: Buffer): Buffer {
  return installationAnchorKey(deriveKey(master, 'audit-anchor'), orgId, pepper);
}

function versions(state: RotationState) {
  return {
    from_version: state.from.version,
    from_fingerprint: state.from.fingerprint,
    to_version: state.to.version,
    to_fingerprint: state.to.fingerprint,
  };
}

/**
 * Re-wraps up to `limit` records still under an older version — credentials, then the per-person audit
 * keys (audit/person-keys.repo.ts) — in the caller's transaction. Each update names the wrapped key it
 * replaces, so a record changed meanwhile (a credential rotated by a running server) is left to the
 * next batch. Shredded records (empty blobs) only get the new version.
 */
export async function rewrapBatch(
  tx: Tx,
  ring: KeyRing,
  state: RotationState,
  limit: number,
): Promise<{ read: number; flipped: number }> {
  const credentials = await rewrapCredentials(tx, ring, state, limit);
  if (credentials.read >= limit) return credentials;
  const people = await rewrapPersonKeys(tx, ring, state, limit - credentials.read);
  return { read: credentials.read + people.read, flipped: credentials.flipped + people.flipped };
}

interface WrappedRow {
  readonly ciphertext: Buffer;
  readonly wrapped_key: Buffer;
  readonly key_version: number;
}

/** The row's data key wrapped under the current key (empty stays empty: shredded). */
function rewrapped(ring: KeyRing, binding: string, row: WrappedRow): Buffer {
  if (row.wrapped_key.length === 0) return row.wrapped_key;
  const old = ring.keys.get(row.key_version);
  if (old === undefined) {
    throw new AppError(
      'decryption_failed',
      `${binding} is sealed under master key version ${row.key_version}, which this rotation does not hold`,
    );
  }
  const sealed: SealedSecret = {
    ciphertext: row.ciphertext,
    wrappedKey: row.wrapped_key,
    keyVersion: row.key_version,
  };
  return rewrap(old, ring.current, binding, sealed).wrappedKey;
}

async function rewrapCredentials(tx: Tx, ring: KeyRing, state: RotationState, limit: number) {
  const rows = await tx
    .selectFrom('credentials')
    .select(['id', 'ciphertext', 'wrapped_key', 'key_version'])
    .where('key_version', '!=', state.to.version)
    .orderBy('id')
    .limit(limit)
    .execute();
  let flipped = 0;
  for (const row of rows) {
    const result = await tx
      .updateTable('credentials')
      .set({ wrapped_key: rewrapped(ring, `credentials:${row.id}`, row), key_version: ring.current.version })
      .where('id', '=', row.id)
      .where('key_version', '=', row.key_version)
      .where('wrapped_key', '=', row.wrapped_key)
      .executeTakeFirst();
    flipped += Number(result.numUpdatedRows) > 0 ? 1 : 0;
  }
  return { read: rows.length, flipped };
}

async function rewrapPersonKeys(tx: Tx, ring: KeyRing, state: RotationState, limit: number) {
  const rows = await tx
    .selectFrom('person_keys')
    .select(['subject_id', 'ciphertext', 'wrapped_key', 'key_version'])
    .where('key_version', '!=', state.to.version)
    .orderBy('subject_id')
    .limit(limit)
    .execute();
  let flipped = 0;
  for (const row of rows) {
    const result = await tx
      .updateTable('person_keys')
      .set({
        wrapped_key: rewrapped(ring, personKeyBinding(row.subject_id), row),
        key_version: ring.current.version,
      })
      .where('subject_id', '=', row.subject_id)
      .where('key_version', '=', row.key_version)
      .where('wrapped_key', '=', row.wrapped_key)
      .executeTakeFirst();
    flipped += Number(result.numUpdatedRows) > 0 ? 1 : 0;
  }
  return { read: rows.length, flipped };
}
