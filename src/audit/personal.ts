// Personal fields of audit entries: which fields name a person, and how they are stored. Such a field is
// sealed (AES-256-GCM) under its person's data key before the entry is hashed, so the chain covers the
// sealed bytes, never the plaintext: destroying the person's key (a purge) leaves every entry, and the
// chain, intact while making the field unreadable (`[purged]`). Pure: keys come in as arguments.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { AuditDetails, AuditValue } from './details.js';

/** A sealed field is stored as `sealed:v1:<subject id>:<base64 of iv | tag | ciphertext>`. */
export const SEALED_PREFIX = 'sealed:v1:';
/** What a listing shows for a field whose person has been purged. */
export const PURGED = '[purged]';
/** What a listing shows for a field that does not open (tampered, or wrong key): never the ciphertext. */
export const UNREADABLE = '[unreadable]';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Who a personal field belongs to: the entry's target, or the user id held in another details field. */
type Subject = { readonly from: 'target' } | { readonly from: 'details'; readonly key: string };

/**
 * The personal fields each action writes. A new audit field that names a person (a name, an email
 * address, an IP address) must be listed here; everything else in the log is ids, counts and settings.
 */
export const PERSONAL_FIELDS: Readonly<
  Record<string, { readonly fields: readonly string[]; readonly subject: Subject }>
> = {
  'user.add': { fields: ['name', 'email'], subject: { from: 'target' } },
  'session.open': { fields: ['ip'], subject: { from: 'details', key: 'user_id' } },
  'me.credential.set': { fields: ['ip'], subject: { from: 'target' } },
};

/** The person an entry's personal fields belong to; null when the action has none or names nobody. */
export function subjectOf(action: string, targetId: string | null, details: AuditDetails): string | null {
  const rule = PERSONAL_FIELDS[action];
  if (!rule) return null;
  const subject = rule.subject.from === 'target' ? targetId : details[rule.subject.key];
  if (typeof subject !== 'string' || !subject.startsWith('usr_')) return null;
  return rule.fields.some((f) => typeof details[f] === 'string' && !isSealed(details[f])) ? subject : null;
}

function aad(subject: string, field: string): Buffer {
  return Buffer.from(`tollgate/v1/audit-personal|${subject}|${field}`, 'utf8');
}

export function isSealed(value: AuditValue | undefined): value is string {
  return typeof value === 'string' && value.startsWith(SEALED_PREFIX);
}

/** Seals one field value under the person's key, bound to the person and the field name. */
export function sealField(key: Buffer, subject: string, field: string, value: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(subject, field));
  const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  const blob = Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  return `${SEALED_PREFIX}${subject}:${blob}`;
}

/** The subject id a sealed value names, or null when the value is not sealed. */
export function sealedSubject(value: AuditValue | undefined): string | null {
  if (!isSealed(value)) return null;
  const rest = value.slice(SEALED_PREFIX.length);
  const colon = rest.indexOf(':');
  return colon > 0 ? rest.slice(0, colon) : null;
}

/** Opens a sealed value; null when it does not open with this key (tampered, moved or another key). */
export function openField(key: Buffer, field: string, value: string): string | null {
  const subject = sealedSubject(value);
  if (subject === null) return null;
  const blob = Buffer.from(value.slice(SEALED_PREFIX.length + subject.length + 1), 'base64');
  if (blob.length < IV_BYTES + TAG_BYTES) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, blob.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(aad(subject, field));
    decipher.setAuthTag(blob.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(blob.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
      'utf8',
    );
  } catch {
    return null;
  }
}

/**
 * The details with the action's personal fields sealed under `key` (the subject's); a null key (the
 * person was purged) writes `[purged]` instead. Fields already sealed are left as they are.
 */
export function sealDetails(
  action: string,
  subject: string,
  key: Buffer | null,
  details: AuditDetails,
): AuditDetails {
  const rule = PERSONAL_FIELDS[action];
  if (!rule) return details;
  const out: Record<string, AuditValue> = { ...details };
  for (const field of rule.fields) {
    const value = out[field];
    if (typeof value !== 'string' || isSealed(value)) continue;
    out[field] = key === null ? PURGED : sealField(key, subject, field, value);
  }
  return out;
}

/**
 * The details as a reader sees them: each sealed field opened with its person's key, `[purged]` when
 * that key was destroyed (`keys` maps the subject to null), `[unreadable]` when it does not open.
 */
export function revealDetails(details: AuditDetails, keys: ReadonlyMap<string, Buffer | null>): AuditDetails {
  let out: Record<string, AuditValue> | null = null;
  for (const [field, value] of Object.entries(details)) {
    const subject = sealedSubject(value);
    if (subject === null || !isSealed(value)) continue;
    out ??= { ...details };
    const key = keys.get(subject);
    out[field] = key === undefined || key === null ? PURGED : (openField(key, field, value) ?? UNREADABLE);
  }
  return out ?? details;
}

/** Every subject whose sealed fields appear in these details. */
export function sealedSubjects(details: AuditDetails): string[] {
  const found: string[] = [];
  for (const value of Object.values(details)) {
    const subject = sealedSubject(value);
    if (subject !== null) found.push(subject);
  }
  return found;
}

/** The action of the one-time reseal epoch's entry (reseal.ts). */
export const RESEAL_ACTION = 'audit.reseal';

/**
 * The hash a head witnessed before a reseal epoch must have, given the epochs' details: inside an
 * epoch's re-hashed range, the old head itself must be the one the epoch entry names, and earlier heads
 * in the range are vouched for by the epoch (which re-chained only a log that verified); outside every
 * range, undefined (the entry's own hash applies).
 */
export function resealedHeadHash(
  epochs: readonly AuditDetails[],
  seq: number,
  witnessedHash: string,
): string | undefined {
  for (const d of epochs) {
    const first = Number(d.first_rehashed_seq);
    const previous = Number(d.previous_head_seq);
    if (seq < first || seq > previous) continue;
    return seq === previous ? String(d.previous_head_hash) : witnessedHash;
  }
  return undefined;
}
