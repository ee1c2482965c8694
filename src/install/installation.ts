// An installation: the home directory, the master key, the database and the server secrets sealed in it.
// `initInstallation` creates one; `openInstallation` opens one and refuses a wrong master key before
// anything is written.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { appendAudit, currentAnchor, headOf, upgradeLegacyAnchor } from '../audit/audit.repo.js';
import { anchorMacValid, installationAnchorKey } from '../audit/chain.js';
import { markSealedFormat, resealAuditLog } from '../audit/reseal.js';
import { type AuditWitness, createWitness } from '../audit/witness.js';
import { type ChangePublisher, changeChannel, createChangePublisher } from '../changes/push.js';
import { type SealedSecret, seal } from '../crypto/envelope.js';
import { hashGatewayKey, newAdminToken } from '../crypto/gateway-key.js';
import { holds, type KeyRing, keyRing, openWithRing } from '../crypto/key-ring.js';
import {
  createMasterKeyFile,
  deriveKey,
  loadMasterKey,
  type MasterKey,
  type MasterKeySources,
  masterKeyCheck,
} from '../crypto/master-key.js';
import { type DatabaseTarget, type Db, openDatabase } from '../db/connect.js';
import { migrateToLatest } from '../db/migrate.js';
import { writeTransaction } from '../db/tx.js';
import type { Clock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { loadBackupKey, readKeyMeta, resolveKeyRing } from './master-keys.js';
import { metaTableExists, readMeta, writeMeta } from './meta.repo.js';
import { decodeSealed, encodeSealed } from './sealed-text.js';

export { decodeSealed, encodeSealed };

export interface InstallationConfig {
  readonly home: string;
  readonly database: DatabaseTarget;
  readonly masterKey: MasterKeySources;
  /** `audit.witness_path`: the file outside the database that receives each committed chain head. */
  readonly audit?: { readonly witness_path: string | null };
  /** `redis.url`: where committed changes are announced to every instance (src/changes/push.ts). */
  readonly redis?: { readonly url: string | null };
}

export interface OpenOptions {
  /** Where a failed witness write is reported (default: one line on stderr). Never throws. */
  readonly onWitnessError?: (message: string) => void;
}

export interface Installation {
  readonly db: Db;
  /** The current master key (seals new secrets); changes when a running process learns a rotation. */
  readonly master: MasterKey;
  /** Server-side pepper of gateway-key and token hashes; random, sealed in the database. */
  readonly pepper: Buffer;
  /** Key of the audit anchor MAC: derived from the current master key, bound to orgId and the pepper. */
  readonly anchorKey: Buffer;
  /**
   * The version of the master key this process was given by its key source (file or variable): what it
   * would start with again. The current key (`master`) may be newer, learnt from a rotation.
   */
  readonly startedWithVersion: number;
  /** Every master key this process holds (two during a rotation). */
  keys(): KeyRing;
  /**
   * Opens a sealed secret with the key of the version it names; a version this process does not
   * hold yet (another process is rotating the master key) makes it learn the new key first.
   */
  openSealed(binding: string, sealed: SealedSecret): Promise<Buffer>;
  /** Re-reads the key rows (and the home key file): true if this process now holds a newer key. */
  refreshKeys(): Promise<boolean>;
  readonly orgId: string;
  /** Writer of the audit witness file; null when `audit.witness_path` is not set. */
  readonly witness: AuditWitness | null;
  /** Announces committed changes to the other instances; absent without Redis (they poll). */
  readonly changes?: ChangePublisher;
  close(): Promise<void>;
}

const PEPPER_BINDING = 'meta:pepper';

/** Creates home, master key and database; returns the installation and the one-time admin token. */
export async function initInstallation(
  cfg: InstallationConfig,
  clock: Clock,
  actor: string,
  options: OpenOptions = {},
): Promise<{ installation: Installation; adminToken: string }> {
  await assertHomeEmpty(cfg);
  await mkdir(cfg.home, { recursive: true, mode: 0o700 });
  const master =
    cfg.masterKey.inline || cfg.masterKey.file
      ? await loadMasterKey(cfg.masterKey)
      : await createMasterKeyFile(cfg.masterKey.defaultFile);

  const db = openDatabase(cfg.database);
  try {
    if ((await readMeta(db, 'org_id')) !== null) {
      throw new AppError(
        'conflict',
        'this database already holds a Tollgate installation; refusing to initialise it again',
      );
    }
    if (await metaTableExists(db)) {
      // Tables without the installation's meta rows: a deleted installation record (which would
      // otherwise start a fresh, clean-looking audit log over the old data) or an interrupted init.
      throw new AppError(
        'conflict',
        'this database holds Tollgate tables but no installation record (deleted, or an interrupted init); restore it from a backup or initialise an empty database',
      );
    }
    await migrateToLatest(db);
    const orgId = newId('org');
    const pepper = randomBytes(32);
    const adminToken = newAdminToken();
    const anchorKey = installationAnchorKey(deriveKey(master, 'audit-anchor'), orgId, pepper);
    const now = clock();
    const first = await writeTransaction(db, async (tx) => {
      await writeMeta(tx, 'org_id', orgId);
      await writeMeta(tx, 'installed_at', String(now));
      await writeMeta(tx, 'master_key_check', masterKeyCheck(master));
      await writeMeta(tx, 'master_key_version', String(master.version));
      await writeMeta(tx, 'pepper', encodeSealed(seal(master, PEPPER_BINDING, pepper)));
      await writeMeta(tx, 'admin_token_hash', hashGatewayKey(pepper, adminToken));
      // A new log is in the sealed format from its first entry: no reseal epoch is ever needed.
      await markSealedFormat(tx, now);
      return appendAudit(
        tx,
        db.dialect,
        anchorKey,
        { actor, action: 'install.init', targetType: 'org', targetId: orgId, at: now },
        { genesis: true },
      );
    });
    const installation = installationOf(cfg, db, keyRing(master), pepper, orgId, options, master.version);
    await installation.witness?.record(headOf(first, anchorKey));
    return { installation, adminToken };
  } catch (error) {
    await db.close();
    throw error;
  }
}

/** Opens an existing installation; a wrong master key is refused before migrations or writes. */
export async function openInstallation(
  cfg: InstallationConfig,
  options: OpenOptions = {},
): Promise<Installation> {
  const master = await loadMasterKey(cfg.masterKey).catch((error: unknown) => {
    // Without a key file and without a configured key there is simply no installation here yet.
    const usesDefaultFile = !cfg.masterKey.inline && !cfg.masterKey.file;
    if (usesDefaultFile && !existsSync(cfg.masterKey.defaultFile)) {
      throw new AppError(
        'not_initialised',
        `no Tollgate installation in ${cfg.home}: run \`tollgate init\` first`,
        {},
        { cause: error },
      );
    }
    throw error;
  });
  const db = openDatabase(cfg.database);
  try {
    const orgId = await readMeta(db, 'org_id');
    const keyMeta = await readKeyMeta(db);
    const sealedPepper = await readMeta(db, 'pepper');
    if (orgId === null || keyMeta === null || sealedPepper === null) {
      throw new AppError(
        'not_initialised',
        `the database has no Tollgate installation: run \`tollgate init\` first`,
      );
    }
    // A wrong key is refused here, before migrations or any write.
    const ring = await resolveKeyRing(master, keyMeta, previousKeySource(cfg));
    await migrateToLatest(db);
    const pepper = openWithRing(ring, PEPPER_BINDING, decodeSealed(sealedPepper));
    const legacyKey = deriveKey(ring.current, 'audit-anchor');
    const anchorKey = installationAnchorKey(legacyKey, orgId, pepper);
    // Installations from before anchors were bound to their installation: re-MAC a legacy anchor
    // that verifies under the old key (once; a forged or missing anchor is left for verify to report).
    const anchor = await currentAnchor(db);
    if (anchor && !anchorMacValid(anchorKey, anchor) && anchorMacValid(legacyKey, anchor)) {
      await writeTransaction(db, (tx) => upgradeLegacyAnchor(tx, db.dialect, legacyKey, anchorKey));
    }
    // Logs from before personal fields were sealed: the one-time reseal epoch (audit/reseal.ts).
    const resealed = await resealAuditLog(db, ring, anchorKey, Date.now());
    const startedWith = [...ring.keys.values()].find((k) => k.fingerprint === master.fingerprint);
    const installation = installationOf(
      cfg,
      db,
      ring,
      pepper,
      orgId,
      options,
      startedWith?.version ?? ring.current.version,
    );
    if (resealed.kind === 'resealed') await installation.witness?.record(headOf(resealed.head, anchorKey));
    return installation;
  } catch (error) {
    await db.close();
    throw error;
  }
}

/** Where the previous key of a rotation is found: the home backup file, when the key lives in home. */
export function previousKeySource(
  cfg: InstallationConfig,
): ((version: number) => Promise<MasterKey | null>) | null {
  if (cfg.masterKey.inline !== undefined || cfg.masterKey.file !== undefined) return null;
  return (version) => loadBackupKey(cfg.masterKey.defaultFile, version);
}

/** Whether home or the database already hold an installation (used by `serve` to initialise on first start). */
export async function isInitialised(cfg: InstallationConfig): Promise<boolean> {
  const entries = await readdir(cfg.home).catch(() => [] as string[]);
  if (entries.includes('master.key')) return true;
  if (
    cfg.database.kind === 'sqlite' &&
    !entries.includes('tollgate.db') &&
    isInside(cfg.home, cfg.database.path)
  ) {
    return false;
  }
  const db = openDatabase(cfg.database);
  try {
    return (await readMeta(db, 'org_id')) !== null;
  } finally {
    await db.close();
  }
}

function installationOf(
  cfg: InstallationConfig,
  db: Db,
  initialRing: KeyRing,
  pepper: Buffer,
  orgId: string,
  options: OpenOptions,
  startedWithVersion: number,
): Installation {
  const path = cfg.audit?.witness_path ?? null;
  const witness =
    path === null ? null : createWitness(path, orgId, options.onWitnessError ?? logWitnessError);
  const url = cfg.redis?.url ?? null;
  const changes = url === null ? undefined : createChangePublisher(url, changeChannel(orgId));
  let ring = initialRing;
  let anchorKey = installationAnchorKey(deriveKey(ring.current, 'audit-anchor'), orgId, pepper);
  let refreshing: Promise<boolean> | null = null;
  const refreshKeys = (): Promise<boolean> => {
    refreshing ??= learnKeys(cfg, db, ring)
      .then((next) => {
        if (next === null || next.current.version <= ring.current.version) return false;
        ring = next;
        anchorKey = installationAnchorKey(deriveKey(ring.current, 'audit-anchor'), orgId, pepper);
        return true;
      })
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  };
  return {
    db,
    get master() {
      return ring.current;
    },
    pepper,
    get anchorKey() {
      return anchorKey;
    },
    orgId,
    startedWithVersion,
    witness,
    ...(changes ? { changes } : {}),
    keys: () => ring,
    refreshKeys,
    openSealed: async (binding, sealed) => {
      if (!holds(ring, sealed.keyVersion)) await refreshKeys();
      return openWithRing(ring, binding, sealed);
    },
    close: async () => {
      await changes?.close();
      await db.close();
    },
  };
}

/**
 * The keys a running process can hold now: from each key it holds (the rotation row gives the new
 * key to a holder of the previous one), else from the key source read again (the home key file a
 * rotation replaced). Null when nothing newer is found.
 */
async function learnKeys(cfg: InstallationConfig, db: Db, ring: KeyRing): Promise<KeyRing | null> {
  const meta = await readKeyMeta(db);
  if (meta === null) return null;
  const previous = previousKeySource(cfg);
  const held = [...ring.keys.values()].sort((a, b) => b.version - a.version);
  for (const key of held) {
    const found = await resolveKeyRing(key, meta, previous).catch(() => null);
    if (found !== null) return found;
  }
  const reloaded = await loadMasterKey(cfg.masterKey).catch(() => null);
  if (reloaded === null) return null;
  return resolveKeyRing(reloaded, meta, previous).catch(() => null);
}

/** The default report of a failed witness write: one structured error line on stderr. */
function logWitnessError(message: string): void {
  process.stderr.write(`${JSON.stringify({ level: 'error', msg: message, time: Date.now() })}\n`);
}

async function assertHomeEmpty(cfg: InstallationConfig): Promise<void> {
  const entries = await readdir(cfg.home).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw new AppError('invalid_input', `cannot read home directory ${cfg.home}: ${error.code ?? 'error'}`);
  });
  // A prepared tollgate.yml is welcome; anything else means the directory is in use.
  const foreign = entries.filter((e) => e !== 'tollgate.yml');
  if (foreign.includes('master.key') || foreign.includes('tollgate.db')) {
    throw new AppError(
      'conflict',
      `${cfg.home} already holds a Tollgate installation; refusing to overwrite it`,
    );
  }
  if (foreign.length > 0) {
    throw new AppError(
      'conflict',
      `${cfg.home} is not empty (${foreign.slice(0, 3).join(', ')}); choose an empty directory`,
    );
  }
}

function isInside(dir: string, file: string): boolean {
  return file.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}
