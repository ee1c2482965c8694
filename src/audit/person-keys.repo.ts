// Per-person data keys (table person_keys), each sealed under the master key with the envelope format
// (so a master-key rotation re-wraps them like credentials: binding `person_keys:<subject>`). A purge
// shreds the key: the blobs are emptied and shredded_at set, and the row stays as a tombstone so no new
// key is ever made for that person.
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { seal } from '../crypto/envelope.js';
import { type KeyRing, openWithRing } from '../crypto/key-ring.js';
import type { Database } from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import type { AuditDetails } from './details.js';
import { sealDetails, subjectOf } from './personal.js';

const KEY_BYTES = 32;

export function personKeyBinding(subject: string): string {
  return `person_keys:${subject}`;
}

/**
 * The person's key for writing, made on first use inside the caller's transaction; null when the person
 * was purged (their fields are then written as `[purged]`, never in the clear).
 */
export async function personKeyForWrite(
  tx: Tx,
  keys: KeyRing,
  subject: string,
  now: number,
): Promise<Buffer | null> {
  const row = await tx
    .selectFrom('person_keys')
    .select(['ciphertext', 'wrapped_key', 'key_version', 'shredded_at'])
    .where('subject_id', '=', subject)
    .executeTakeFirst();
  if (row) return row.shredded_at === null ? openKey(keys, subject, row) : null;
  const key = randomBytes(KEY_BYTES);
  const sealed = seal(keys.current, personKeyBinding(subject), key);
  await tx
    .insertInto('person_keys')
    .values({
      subject_id: subject,
      ciphertext: sealed.ciphertext,
      wrapped_key: sealed.wrappedKey,
      key_version: sealed.keyVersion,
      created_at: now,
      shredded_at: null,
    })
    .execute();
  return key;
}

/** The keys of these people: a Buffer per live key, null for a shredded one, absent when there is none. */
export async function loadPersonKeys(
  db: Kysely<Database>,
  ring: KeyRing,
  subjects: Iterable<string>,
): Promise<Map<string, Buffer | null>> {
  const wanted = [...new Set(subjects)];
  const keys = new Map<string, Buffer | null>();
  if (wanted.length === 0) return keys;
  const rows = await db
    .selectFrom('person_keys')
    .select(['subject_id', 'ciphertext', 'wrapped_key', 'key_version', 'shredded_at'])
    .where('subject_id', 'in', wanted)
    .execute();
  for (const row of rows) {
    keys.set(row.subject_id, row.shredded_at === null ? openKey(ring, row.subject_id, row) : null);
  }
  return keys;
}

/** Destroys the person's key (or records that none may ever be made); true if it was not shredded before. */
export async function shredPersonKey(tx: Tx, subject: string, now: number): Promise<boolean> {
  const tombstone = {
    ciphertext: Buffer.alloc(0),
    wrapped_key: Buffer.alloc(0),
    key_version: 0,
    shredded_at: now,
  };
  const before = await tx
    .selectFrom('person_keys')
    .select('shredded_at')
    .where('subject_id', '=', subject)
    .executeTakeFirst();
  if (before?.shredded_at != null) return false;
  await tx
    .insertInto('person_keys')
    .values({ subject_id: subject, created_at: now, ...tombstone })
    .onConflict((oc) => oc.column('subject_id').doUpdateSet(tombstone))
    .execute();
  return true;
}

function openKey(
  keys: KeyRing,
  subject: string,
  row: { ciphertext: Buffer; wrapped_key: Buffer; key_version: number },
): Buffer {
  // The version that wrapped it: during a master-key rotation, either key.
  return openWithRing(keys, personKeyBinding(subject), {
    ciphertext: row.ciphertext,
    wrappedKey: row.wrapped_key,
    keyVersion: row.key_version,
  });
}

/**
 * The details of a new entry with its personal fields sealed under their person's key (made on first
 * use); unchanged for actions without personal fields.
 */
export async function sealPersonalDetails(
  tx: Tx,
  keys: KeyRing,
  entry: { action: string; targetId?: string | null; details?: AuditDetails; at: number },
): Promise<AuditDetails | undefined> {
  const details = entry.details ?? {};
  const subject = subjectOf(entry.action, entry.targetId ?? null, details);
  if (subject === null) return entry.details;
  const key = await personKeyForWrite(tx, keys, subject, entry.at);
  try {
    return sealDetails(entry.action, subject, key, details);
  } finally {
    key?.fill(0);
  }
}
