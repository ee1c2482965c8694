// Envelope encryption: each secret gets its own AES-256-GCM data key, wrapped by the master key.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AppError } from '../lib/errors.js';
import type { MasterKey } from './master-key.js';

export interface SealedSecret {
  ciphertext: Buffer;
  wrappedKey: Buffer;
  keyVersion: number;
}

// Layout of both blobs: format byte | 12-byte IV | 16-byte GCM tag | encrypted bytes.
const FORMAT_V1 = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + IV_BYTES + TAG_BYTES;
const DATA_KEY_BYTES = 32;

// The record binding is authenticated data, so a ciphertext or wrapped key copied onto another
// record fails to open there. The two prefixes keep data and wrap AADs from ever coinciding, and
// the wrap AAD names the master-key version so a wrapped key cannot be relabelled as another version.
function dataAad(binding: string): Buffer {
  return Buffer.from(`tollgate/v1/data|${binding}`, 'utf8');
}

function wrapAad(binding: string, version: number): Buffer {
  return Buffer.from(`tollgate/v1/wrap|${binding}|${version}`, 'utf8');
}

function gcmSeal(key: Buffer, aad: Buffer, plaintext: Buffer): Buffer {
  // A random 96-bit IV per message; every data key encrypts exactly one message, and the master key
  // wraps one data key per secret, far below the ~2^32 messages a random IV allows per key.
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([FORMAT_V1]), iv, cipher.getAuthTag(), body]);
}

// Returns null on any failure; callers turn that into one error that says nothing about why.
function gcmOpen(key: Buffer, aad: Buffer, blob: Buffer): Buffer | null {
  if (blob.length < HEADER_BYTES || blob[0] !== FORMAT_V1) return null;
  const iv = blob.subarray(1, 1 + IV_BYTES);
  const tag = blob.subarray(1 + IV_BYTES, HEADER_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    const head = decipher.update(blob.subarray(HEADER_BYTES));
    // final() throws if the tag does not verify; nothing from update() is returned before that.
    const tail = decipher.final();
    const plaintext = Buffer.concat([head, tail]);
    head.fill(0);
    return plaintext;
  } catch {
    return null;
  }
}

function checkBinding(binding: string): void {
  if (binding === '') throw new AppError('invalid_input', 'secret binding must not be empty');
}

function failure(binding: string): AppError {
  return new AppError(
    'decryption_failed',
    `secret ${binding} could not be decrypted (wrong master key or tampered record)`,
  );
}

function unwrapDataKey(master: MasterKey, binding: string, sealed: SealedSecret): Buffer {
  if (sealed.keyVersion !== master.version) {
    throw new AppError(
      'decryption_failed',
      `secret ${binding} could not be decrypted: it needs master key version ${sealed.keyVersion}, ` +
        `but version ${master.version} is loaded`,
    );
  }
  const dataKey = gcmOpen(master.key, wrapAad(binding, master.version), sealed.wrappedKey);
  if (dataKey === null || dataKey.length !== DATA_KEY_BYTES) {
    dataKey?.fill(0);
    throw failure(binding);
  }
  return dataKey;
}

function wrapDataKey(master: MasterKey, binding: string, dataKey: Buffer): Buffer {
  return gcmSeal(master.key, wrapAad(binding, master.version), dataKey);
}

/** Encrypts `plaintext` for the record named by `binding` (e.g. `credentials:cred_abc`). */
export function seal(master: MasterKey, binding: string, plaintext: Buffer): SealedSecret {
  checkBinding(binding);
  const dataKey = randomBytes(DATA_KEY_BYTES);
  try {
    return {
      ciphertext: gcmSeal(dataKey, dataAad(binding), plaintext),
      wrappedKey: wrapDataKey(master, binding, dataKey),
      keyVersion: master.version,
    };
  } finally {
    dataKey.fill(0); // the unwrapped data key never outlives the call
  }
}

/** Decrypts a sealed secret of the record named by `binding`; throws `decryption_failed` otherwise. */
export function open(master: MasterKey, binding: string, sealed: SealedSecret): Buffer {
  checkBinding(binding);
  const dataKey = unwrapDataKey(master, binding, sealed);
  try {
    const plaintext = gcmOpen(dataKey, dataAad(binding), sealed.ciphertext);
    if (plaintext === null) throw failure(binding);
    return plaintext;
  } finally {
    dataKey.fill(0);
  }
}

/** Re-wraps the data key under a new master key for rotation; the ciphertext is left unchanged. */
export function rewrap(
  oldMaster: MasterKey,
  newMaster: MasterKey,
  binding: string,
  sealed: SealedSecret,
): SealedSecret {
  checkBinding(binding);
  // The version tells which master key a record needs; two keys sharing one version would make
  // half-rotated records indistinguishable.
  if (newMaster.version === oldMaster.version) {
    throw new AppError('invalid_input', 'the new master key must have a different version from the old one');
  }
  const dataKey = unwrapDataKey(oldMaster, binding, sealed);
  try {
    return {
      ciphertext: sealed.ciphertext,
      wrappedKey: wrapDataKey(newMaster, binding, dataKey),
      keyVersion: newMaster.version,
    };
  } finally {
    dataKey.fill(0);
  }
}
