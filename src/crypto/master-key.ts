// The master key: parsing, loading from env/file, creating the key file, and keys derived from it.

import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { link, open, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { AppError } from '../lib/errors.js';
import { syncDirectory } from '../lib/sync-directory.js';

export const MASTER_KEY_BYTES = 32;

export interface MasterKey {
  readonly version: number;
  /** 32 secret bytes; never logged, never put in an error message. */
  readonly key: Buffer;
  /** First 16 hex chars of an HMAC of the key: safe to show, identifies which key is loaded. */
  readonly fingerprint: string;
}

export interface MasterKeySources {
  /** TOLLGATE_MASTER_KEY; an empty string counts as set (and is refused), never as "absent". */
  inline?: string;
  /** TOLLGATE_MASTER_KEY_FILE */
  file?: string;
  /** The key file Tollgate created in its home directory. */
  defaultFile: string;
  version?: number;
}

const HKDF_SALT = 'tollgate/v1';
const KEY_CHECK_TEXT = 'tollgate master key check v1';
// A key file holds ~45 bytes; reading at most this much keeps `/dev/zero` or a log file harmless.
const MAX_KEY_FILE_BYTES = 4096;
const STANDARD_B64 = /^[A-Za-z0-9+/]+={0,2}$/;
const URL_SAFE_B64 = /^[A-Za-z0-9_-]+={0,2}$/;

function invalid(message: string): AppError {
  return new AppError('master_key_invalid', message);
}

/** Parses base64 (standard or url-safe) text of exactly 32 bytes into a MasterKey. */
export function parseMasterKey(text: string, source: string, version = 1): MasterKey {
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new AppError('invalid_input', 'master key version must be a positive integer');
  }
  // Messages name the source and the byte count only, never any part of the text.
  const trimmed = text.trim();
  const hint = 'generate one with `openssl rand -base64 32`';
  if (trimmed !== '' && !STANDARD_B64.test(trimmed) && !URL_SAFE_B64.test(trimmed)) {
    throw invalid(`${source}: master key is not base64; ${hint}`);
  }
  const bytes = Buffer.from(trimmed, 'base64');
  // Require the canonical encoding so a mistyped last character is not silently ignored.
  const unpadded = trimmed.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
  if (bytes.toString('base64').replace(/=+$/, '') !== unpadded) {
    bytes.fill(0);
    throw invalid(`${source}: master key is not valid base64; ${hint}`);
  }
  if (bytes.length !== MASTER_KEY_BYTES) {
    const n = bytes.length;
    bytes.fill(0);
    if (n < MASTER_KEY_BYTES) {
      throw invalid(`${source}: master key is ${n} bytes; at least ${MASTER_KEY_BYTES} are required`);
    }
    throw invalid(`${source}: master key is ${n} bytes; it must be exactly ${MASTER_KEY_BYTES} bytes`);
  }
  const fingerprint = createHmac('sha256', bytes)
    .update('tollgate master key fingerprint')
    .digest('hex')
    .slice(0, 16);
  return Object.freeze({ version, key: bytes, fingerprint });
}

function errnoCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}

async function readKeyFile(path: string, source: string, requirePrivate: boolean): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') {
      const fix = requirePrivate ? 'run `tollgate init` or set TOLLGATE_MASTER_KEY' : 'check the path';
      throw invalid(`no master key: ${source} ${path} does not exist; ${fix}`);
    }
    throw invalid(`${source} ${path} could not be read (${errnoCode(error)})`);
  }
  const buf = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
  try {
    // fstat on the open handle, not stat on the path, so the checked file is the one read.
    const stats = await handle.stat();
    if (!stats.isFile()) throw invalid(`${source} ${path} is not a regular file`);
    // Only the file Tollgate created is held to 0600: mounted secrets (Docker/Kubernetes) often
    // are 0444 inside a container, and their owner chose that.
    if (requirePrivate && process.platform !== 'win32' && (stats.mode & 0o077) !== 0) {
      const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
      throw invalid(`${path} is accessible by other users (mode ${mode}); run \`chmod 600 ${path}\``);
    }
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_KEY_FILE_BYTES) throw invalid(`${source} ${path} is too large to be a master key`);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    buf.fill(0);
    await handle.close();
  }
}

/** Loads the master key: TOLLGATE_MASTER_KEY, else TOLLGATE_MASTER_KEY_FILE, else the home key file. */
export async function loadMasterKey(src: MasterKeySources): Promise<MasterKey> {
  const version = src.version ?? 1;
  if (src.inline !== undefined) return parseMasterKey(src.inline, 'TOLLGATE_MASTER_KEY', version);
  if (src.file !== undefined) {
    const text = await readKeyFile(src.file, 'TOLLGATE_MASTER_KEY_FILE', false);
    return parseMasterKey(text, `TOLLGATE_MASTER_KEY_FILE ${src.file}`, version);
  }
  const text = await readKeyFile(src.defaultFile, 'master key file', true);
  return parseMasterKey(text, src.defaultFile, version);
}

/** Creates a new key file (mode 0600) at `path`; refuses if anything already exists there. */
export async function createMasterKeyFile(path: string): Promise<MasterKey> {
  const text = `${generateMasterKeyText()}\n`;
  const master = parseMasterKey(text, path);
  const dir = dirname(path);
  let temp: string | null = null;
  try {
    temp = await writeKeyTemp(path, text);
    // link() fails with EEXIST instead of replacing, unlike rename(): an existing master key is
    // never overwritten (that would make every sealed secret unrecoverable).
    await link(temp, path);
    await syncDirectory(dir);
    return master;
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') {
      throw new AppError('conflict', `${path} already exists; refusing to overwrite a master key`);
    }
    throw new AppError(
      'internal',
      `could not create master key file ${path} (${errnoCode(error)})`,
      {},
      {
        cause: error,
      },
    );
  } finally {
    if (temp !== null) await unlink(temp).catch(() => undefined);
  }
}

/**
 * Writes `text` to a new temp file beside `path` and fsyncs it; answers its name. 'wx' + 0600 from the
 * first byte: a key is never readable by others, not even briefly.
 */
export async function writeKeyTemp(path: string, text: string): Promise<string> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temp;
}

/** A 32-byte key for one purpose ("audit-anchor", "key-check", …) derived with HKDF-SHA256. */
export function deriveKey(master: MasterKey, purpose: string): Buffer {
  if (purpose === '') throw new AppError('invalid_input', 'key derivation purpose must not be empty');
  // Distinct purposes give independent keys, so the master key itself is used only to wrap data keys.
  return Buffer.from(hkdfSync('sha256', master.key, HKDF_SALT, purpose, 32));
}

/** Hex value stored in the database that lets a start-up detect a wrong master key. */
export function masterKeyCheck(master: MasterKey): string {
  const key = deriveKey(master, 'key-check');
  try {
    return createHmac('sha256', key).update(KEY_CHECK_TEXT).digest('hex');
  } finally {
    key.fill(0);
  }
}

/** True if `stored` is the check value of this master key (constant-time comparison). */
export function verifyMasterKeyCheck(master: MasterKey, stored: string): boolean {
  if (!/^[0-9a-fA-F]{64}$/.test(stored)) return false;
  return timingSafeEqual(Buffer.from(masterKeyCheck(master), 'hex'), Buffer.from(stored, 'hex'));
}

/** A fresh random master key as base64 text (32 bytes). */
export function generateMasterKeyText(): string {
  const bytes = randomBytes(MASTER_KEY_BYTES);
  try {
    return bytes.toString('base64');
  } finally {
    bytes.fill(0);
  }
}
