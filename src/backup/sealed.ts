// A backup under a passphrase (`backup --encrypt`): one JSON envelope line (scrypt parameters and salt,
// the AES-256-GCM IV, a check value of the derived key), then the ciphertext of the whole backup
// file, then the 16-byte GCM tag. The envelope line is the cipher's associated data.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { DEFAULT_SCRYPT_PARAMS, deriveFromPassphrase } from '../crypto/passphrase.js';
import { AppError } from '../lib/errors.js';
import { damaged } from './format.js';

export const SEALED_FORMAT = 'tollgate-backup-sealed';
export const TAG_BYTES = 16;
/** The envelope line is short; a longer first line is not an envelope. */
export const MAX_ENVELOPE_BYTES = 4096;
const SALT_BYTES = 16;
const IV_BYTES = 12;
const CHECK_TEXT = 'tollgate backup passphrase check';

export interface SealedEnvelope {
  readonly format: typeof SEALED_FORMAT;
  readonly version: 1;
  readonly kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  readonly cipher: { name: 'aes-256-gcm'; iv: string };
  /** HMAC of a constant under the derived key: tells a wrong passphrase from a damaged file. */
  readonly check: string;
}

export interface Sealer {
  /** The envelope line, written before the ciphertext. */
  readonly prefix: Buffer;
  update(plain: Buffer): Buffer;
  /** The last ciphertext bytes and the tag. */
  final(): Buffer;
}

export async function createSealer(passphrase: string): Promise<Sealer> {
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(IV_BYTES);
  const { N, r, p } = DEFAULT_SCRYPT_PARAMS;
  const key = await deriveFromPassphrase(passphrase, salt, { N, r, p });
  const envelope: SealedEnvelope = {
    format: SEALED_FORMAT,
    version: 1,
    kdf: { name: 'scrypt', N, r, p, salt: salt.toString('base64') },
    cipher: { name: 'aes-256-gcm', iv: iv.toString('base64') },
    check: checkValue(key),
  };
  const prefix = Buffer.from(`${JSON.stringify(envelope)}\n`, 'utf8');
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  key.fill(0);
  cipher.setAAD(prefix);
  return {
    prefix,
    update: (plain) => cipher.update(plain),
    final: () => Buffer.concat([cipher.final(), cipher.getAuthTag()]),
  };
}

/** The envelope of a sealed backup's first line, or null when the line is not one. */
export function parseEnvelope(line: string): SealedEnvelope | null {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null || (raw as { format?: unknown }).format !== SEALED_FORMAT)
    return null;
  const e = raw as Partial<SealedEnvelope>;
  if (e.version !== 1) throw new AppError('invalid_input', 'this sealed backup version is not supported');
  if (e.kdf?.name !== 'scrypt' || e.cipher?.name !== 'aes-256-gcm' || typeof e.check !== 'string')
    throw damaged('the encryption envelope is not valid');
  return e as SealedEnvelope;
}

/** Derives the file key from the passphrase; refuses a wrong passphrase before anything is read. */
export async function unlockEnvelope(envelope: SealedEnvelope, passphrase: string): Promise<Buffer> {
  const { N, r, p, salt } = envelope.kdf;
  const key = await deriveFromPassphrase(passphrase, Buffer.from(salt, 'base64'), { N, r, p });
  const expected = Buffer.from(envelope.check, 'hex');
  const actual = Buffer.from(checkValue(key), 'hex');
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
    key.fill(0);
    throw new AppError('decryption_failed', 'wrong passphrase for this backup; nothing was restored');
  }
  return key;
}

export interface Opener {
  update(sealed: Buffer): Buffer;
  /** Throws when the tag does not verify: the ciphertext was changed or cut. */
  final(): void;
}

export function createOpener(envelope: SealedEnvelope, prefix: Buffer, key: Buffer, tag: Buffer): Opener {
  const iv = Buffer.from(envelope.cipher.iv, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(prefix);
  decipher.setAuthTag(tag);
  return {
    update: (sealed) => decipher.update(sealed),
    final: () => {
      try {
        decipher.final();
      } catch {
        throw damaged('the encrypted contents do not verify: the file was changed or cut short');
      }
    },
  };
}

function checkValue(key: Buffer): string {
  return createHmac('sha256', key).update(CHECK_TEXT).digest('hex').slice(0, 32);
}
