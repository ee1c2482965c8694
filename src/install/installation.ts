// An installation: the home directory, the master key, the database and the server secrets sealed in it.
// `initInstallation` creates one; `openInstallation` opens one and refuses a wrong master key before
// anything is written.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { appendAudit } from '../audit/audit.repo.js';
import { open, type SealedSecret, seal } from '../crypto/envelope.js';
import { hashGatewayKey, newAdminToken } from '../crypto/gateway-key.js';
import {
  createMasterKeyFile,
  deriveKey,
  loadMasterKey,
  type MasterKey,
  type MasterKeySources,
  masterKeyCheck,
  verifyMasterKeyCheck,
} from '../crypto/master-key.js';
import { type DatabaseTarget, type Db, openDatabase } from '../db/connect.js';
import { migrateToLatest } from '../db/migrate.js';
import { writeTransaction } from '../db/tx.js';
import type { Clock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { readMeta, writeMeta } from './meta.repo.js';

export interface InstallationConfig {
  readonly home: string;
  readonly database: DatabaseTarget;
  readonly masterKey: MasterKeySources;
}

export interface Installation {
  readonly db: Db;
  readonly master: MasterKey;
  /** Server-side pepper of gateway-key and token hashes; random, sealed in the database. */
  readonly pepper: Buffer;
  /** Key of the audit anchor MAC, derived from the master key. */
  readonly anchorKey: Buffer;
  readonly orgId: string;
  close(): Promise<void>;
}

const PEPPER_BINDING = 'meta:pepper';

/** Creates home, master key and database; returns the installation and the one-time admin token. */
export async function initInstallation(
  cfg: InstallationConfig,
  clock: Clock,
  actor: string,
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
    await migrateToLatest(db);
    const orgId = newId('org');
    const pepper = randomBytes(32);
    const adminToken = newAdminToken();
    const anchorKey = deriveKey(master, 'audit-anchor');
    const now = clock();
    await writeTransaction(db, async (tx) => {
      await writeMeta(tx, 'org_id', orgId);
      await writeMeta(tx, 'installed_at', String(now));
      await writeMeta(tx, 'master_key_check', masterKeyCheck(master));
      await writeMeta(tx, 'master_key_version', String(master.version));
      await writeMeta(tx, 'pepper', encodeSealed(seal(master, PEPPER_BINDING, pepper)));
      await writeMeta(tx, 'admin_token_hash', hashGatewayKey(pepper, adminToken));
      await appendAudit(tx, db.dialect, anchorKey, {
        actor,
        action: 'install.init',
        targetType: 'org',
        targetId: orgId,
        at: now,
      });
    });
    return { installation: installationOf(db, master, pepper, anchorKey, orgId), adminToken };
  } catch (error) {
    await db.close();
    throw error;
  }
}

/** Opens an existing installation; a wrong master key is refused before migrations or writes. */
export async function openInstallation(cfg: InstallationConfig): Promise<Installation> {
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
    const check = await readMeta(db, 'master_key_check');
    const sealedPepper = await readMeta(db, 'pepper');
    if (orgId === null || check === null || sealedPepper === null) {
      throw new AppError(
        'not_initialised',
        `the database has no Tollgate installation: run \`tollgate init\` first`,
      );
    }
    if (!verifyMasterKeyCheck(master, check)) {
      throw new AppError(
        'master_key_invalid',
        'the master key does not belong to this installation; nothing was changed',
      );
    }
    await migrateToLatest(db);
    const pepper = open(master, PEPPER_BINDING, decodeSealed(sealedPepper));
    return installationOf(db, master, pepper, deriveKey(master, 'audit-anchor'), orgId);
  } catch (error) {
    await db.close();
    throw error;
  }
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
  db: Db,
  master: MasterKey,
  pepper: Buffer,
  anchorKey: Buffer,
  orgId: string,
): Installation {
  return { db, master, pepper, anchorKey, orgId, close: () => db.close() };
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

export function encodeSealed(sealed: SealedSecret): string {
  return JSON.stringify({
    c: sealed.ciphertext.toString('base64'),
    w: sealed.wrappedKey.toString('base64'),
    v: sealed.keyVersion,
  });
}

export function decodeSealed(text: string): SealedSecret {
  const parsed = JSON.parse(text) as { c: string; w: string; v: number };
  return {
    ciphertext: Buffer.from(parsed.c, 'base64'),
    wrappedKey: Buffer.from(parsed.w, 'base64'),
    keyVersion: parsed.v,
  };
}
