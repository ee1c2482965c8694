// Encrypted credential bundles for `credential export` / `credential import`: a versioned JSON envelope
// around one AES-256-GCM ciphertext whose key is derived from a passphrase with scrypt.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DEFAULT_SCRYPT_PARAMS, deriveFromPassphrase, type ScryptParams } from '../crypto/passphrase.js';
import { AppError } from '../lib/errors.js';

export const BUNDLE_FORMAT = 'tollgate-credentials';
export const BUNDLE_VERSION = 1;
export const MIN_PASSPHRASE_CHARS = 12;
/** Larger files are refused before parsing; thousands of credentials fit in a fraction of this. */
export const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

const SALT_BYTES = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;
// A bundle names its own scrypt cost, so a crafted file could ask for gigabytes; 128·N·r bytes is
// what scrypt allocates, and the defaults need 128 MiB of the 1 GiB allowed here.
const MAX_KDF_MEMORY_BYTES = 1024 ** 3;
const ENVELOPE_FIELDS = new Set(['format', 'version', 'kdf', 'cipher', 'ciphertext', 'created_at']);

/** One credential as carried in a bundle; domain values are checked by the importer, not here. */
export interface BundleEntry {
  name: string;
  provider: string;
  /** `org`, `team:NAME` or `user:NAME`. */
  owner: string;
  environment: string | null;
  status: string;
  preferred: boolean;
  hint: string;
  secret: string;
  /** ISO 8601. */
  created_at: string;
}

export interface BundleHeader {
  format: typeof BUNDLE_FORMAT;
  version: typeof BUNDLE_VERSION;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  cipher: { name: 'aes-256-gcm'; iv: string };
  created_at: string;
}

export interface OpenedBundle {
  createdAt: string;
  entries: BundleEntry[];
}

interface ParsedBundle {
  header: BundleHeader;
  salt: Buffer;
  iv: Buffer;
  sealed: Buffer;
}

const failed = () =>
  new AppError(
    'decryption_failed',
    'the bundle could not be opened: wrong passphrase or the file was modified',
  );

const malformed = (what: string) =>
  new AppError('invalid_input', `not a valid Tollgate credentials bundle: ${what}`);

/** Refuses passphrases too short to protect a file that may leave the machine. */
export function checkExportPassphrase(passphrase: string): void {
  if ([...passphrase.normalize('NFC')].length < MIN_PASSPHRASE_CHARS) {
    throw new AppError(
      'invalid_input',
      `the export passphrase must be at least ${MIN_PASSPHRASE_CHARS} characters long`,
    );
  }
}

/** Encrypts entries under a passphrase and returns the bundle file's text. */
export async function sealBundle(
  entries: readonly BundleEntry[],
  passphrase: string,
  opts: { scrypt?: ScryptParams; now?: number } = {},
): Promise<string> {
  checkExportPassphrase(passphrase);
  const { N, r, p } = opts.scrypt ?? DEFAULT_SCRYPT_PARAMS;
  const salt = randomBytes(SALT_BYTES);
  // A fresh salt gives a fresh key per bundle, and the IV is random as well.
  const iv = randomBytes(IV_BYTES);
  const header: BundleHeader = {
    format: BUNDLE_FORMAT,
    version: BUNDLE_VERSION,
    kdf: { name: 'scrypt', N, r, p, salt: salt.toString('base64') },
    cipher: { name: 'aes-256-gcm', iv: iv.toString('base64') },
    created_at: new Date(opts.now ?? Date.now()).toISOString(),
  };
  const key = await deriveFromPassphrase(passphrase, salt, { N, r, p });
  const plaintext = Buffer.from(JSON.stringify({ credentials: entries.map(entryFields) }), 'utf8');
  try {
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(headerAad(header));
    const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return `${JSON.stringify({ ...header, ciphertext: sealed.toString('base64') }, null, 2)}\n`;
  } finally {
    key.fill(0);
    plaintext.fill(0);
  }
}

/** Checks that text is a bundle this version can read and returns its header, without the passphrase. */
export function readBundleHeader(text: string): BundleHeader {
  return parseBundle(text).header;
}

/** Decrypts a bundle; wrong passphrase and tampering give one error, since GCM cannot tell them apart. */
export async function openBundle(text: string, passphrase: string): Promise<OpenedBundle> {
  const bundle = parseBundle(text);
  const { N, r, p } = bundle.header.kdf;
  const key = await deriveFromPassphrase(passphrase, bundle.salt, { N, r, p });
  let plaintext: Buffer | null = null;
  try {
    plaintext = decrypt(key, bundle);
    if (plaintext === null) throw failed();
    return { createdAt: bundle.header.created_at, entries: parsePayload(plaintext) };
  } finally {
    key.fill(0);
    plaintext?.fill(0);
  }
}

// The header is authenticated as associated data, re-serialised with a fixed key order from the
// parsed values, so changing any header field (version, cost, salt, IV, date) makes the tag fail.
function headerAad(h: BundleHeader): Buffer {
  const canonical = {
    format: h.format,
    version: h.version,
    kdf: { name: h.kdf.name, N: h.kdf.N, r: h.kdf.r, p: h.kdf.p, salt: h.kdf.salt },
    cipher: { name: h.cipher.name, iv: h.cipher.iv },
    created_at: h.created_at,
  };
  return Buffer.from(JSON.stringify(canonical), 'utf8');
}

function decrypt(key: Buffer, bundle: ParsedBundle): Buffer | null {
  const body = bundle.sealed.subarray(0, bundle.sealed.length - TAG_BYTES);
  const tag = bundle.sealed.subarray(bundle.sealed.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, bundle.iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(headerAad(bundle.header));
    decipher.setAuthTag(tag);
    const head = decipher.update(body);
    // final() throws when the tag does not verify; the unverified bytes are wiped, never returned.
    try {
      return Buffer.concat([head, decipher.final()]);
    } finally {
      head.fill(0);
    }
  } catch {
    return null;
  }
}

// Only these fields are written, whatever else the caller's objects carry.
function entryFields(e: BundleEntry): BundleEntry {
  return {
    name: e.name,
    provider: e.provider,
    owner: e.owner,
    environment: e.environment,
    status: e.status,
    preferred: e.preferred,
    hint: e.hint,
    secret: e.secret,
    created_at: e.created_at,
  };
}

function parseBundle(text: string): ParsedBundle {
  if (Buffer.byteLength(text, 'utf8') > MAX_BUNDLE_BYTES) {
    throw malformed(`the file is larger than ${MAX_BUNDLE_BYTES / 1024 / 1024} MiB`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw malformed('the file is not JSON (truncated or not a bundle)');
  }
  if (!isRecord(raw)) throw malformed('expected a JSON object');
  if (raw.format !== BUNDLE_FORMAT) throw malformed(`"format" is not "${BUNDLE_FORMAT}"`);
  checkVersion(raw.version);
  for (const field of Object.keys(raw)) {
    if (!ENVELOPE_FIELDS.has(field))
      throw malformed(`unexpected field ${JSON.stringify(field.slice(0, 40))}`);
  }
  const kdf = parseKdf(raw.kdf);
  const cipher = raw.cipher;
  if (!isRecord(cipher) || cipher.name !== 'aes-256-gcm')
    throw malformed('"cipher.name" is not "aes-256-gcm"');
  const iv = decodeBase64('cipher.iv', cipher.iv);
  if (iv.length !== IV_BYTES) throw malformed(`"cipher.iv" is not ${IV_BYTES} bytes`);
  const sealed = decodeBase64('ciphertext', raw.ciphertext);
  if (sealed.length < TAG_BYTES) throw malformed('"ciphertext" is too short');
  const createdAt = raw.created_at;
  if (typeof createdAt !== 'string' || !Number.isFinite(Date.parse(createdAt))) {
    throw malformed('"created_at" is not a date');
  }
  const header: BundleHeader = {
    format: BUNDLE_FORMAT,
    version: BUNDLE_VERSION,
    kdf: { name: 'scrypt', N: kdf.N, r: kdf.r, p: kdf.p, salt: kdf.saltText },
    cipher: { name: 'aes-256-gcm', iv: iv.toString('base64') },
    created_at: createdAt,
  };
  return { header, salt: kdf.salt, iv, sealed };
}

function checkVersion(version: unknown): void {
  if (typeof version !== 'number' || !Number.isSafeInteger(version)) {
    throw malformed('"version" is missing or not a whole number');
  }
  if (version !== BUNDLE_VERSION) {
    throw new AppError(
      'invalid_input',
      `bundle version ${version} is not supported: this Tollgate reads version ${BUNDLE_VERSION}` +
        (version > BUNDLE_VERSION
          ? ' (the bundle was written by a newer Tollgate; upgrade to import it)'
          : ''),
    );
  }
}

function parseKdf(kdf: unknown): { N: number; r: number; p: number; salt: Buffer; saltText: string } {
  if (!isRecord(kdf) || kdf.name !== 'scrypt') throw malformed('"kdf.name" is not "scrypt"');
  const { N, r, p } = kdf;
  if (!isWhole(N) || !isWhole(r) || !isWhole(p)) throw malformed('"kdf" N, r and p must be whole numbers');
  if (128 * N * r > MAX_KDF_MEMORY_BYTES) {
    throw malformed(`its scrypt cost needs more than ${MAX_KDF_MEMORY_BYTES / 1024 ** 3} GiB of memory`);
  }
  const salt = decodeBase64('kdf.salt', kdf.salt);
  if (salt.length < SALT_BYTES) throw malformed(`"kdf.salt" is shorter than ${SALT_BYTES} bytes`);
  return { N, r, p, salt, saltText: salt.toString('base64') };
}

// Strict base64: Node's decoder skips characters it does not know, so a changed character could
// otherwise decode to the same bytes. Only the canonical encoding of the decoded bytes is accepted.
function decodeBase64(field: string, value: unknown): Buffer {
  if (typeof value !== 'string' || value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
    throw malformed(`"${field}" is not base64`);
  }
  const bytes = Buffer.from(value, 'base64');
  if (bytes.toString('base64') !== value) throw malformed(`"${field}" is not canonical base64`);
  return bytes;
}

// The payload is authenticated, so a malformed one means a bug in whatever wrote it, not tampering.
function parsePayload(plaintext: Buffer): BundleEntry[] {
  let raw: unknown;
  try {
    raw = JSON.parse(plaintext.toString('utf8'));
  } catch {
    throw malformed('the decrypted contents are not JSON');
  }
  if (!isRecord(raw) || !Array.isArray(raw.credentials)) throw malformed('the contents have no credentials');
  return raw.credentials.map((item: unknown, index) => parseEntry(item, `credentials[${index}]`));
}

function parseEntry(item: unknown, at: string): BundleEntry {
  if (!isRecord(item)) throw malformed(`${at} is not an object`);
  const text = (field: string, nonEmpty = false): string => {
    const value = item[field];
    if (typeof value !== 'string' || (nonEmpty && value === ''))
      throw malformed(`${at}.${field} is not valid`);
    return value;
  };
  const environment = item.environment;
  if (environment !== null && typeof environment !== 'string') {
    throw malformed(`${at}.environment is not valid`);
  }
  if (typeof item.preferred !== 'boolean') throw malformed(`${at}.preferred is not valid`);
  return {
    name: text('name', true),
    provider: text('provider', true),
    owner: text('owner', true),
    environment,
    status: text('status', true),
    preferred: item.preferred,
    hint: text('hint'),
    secret: text('secret', true),
    created_at: text('created_at'),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isWhole(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}
