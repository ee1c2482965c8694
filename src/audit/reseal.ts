// The one-time "reseal epoch" that brings an audit log written before personal fields were sealed to
// the sealed format (run when an installation opens, after migration 0022).
//
// Entries written before then hold personal fields (user.add's name, session IPs) in the clear, and their
// hashes cover that plaintext, so they can neither be purged nor edited in place. The epoch, in one write
// transaction holding the anchor:
//   1. verifies the existing chain against its MAC'd anchor as it reads it (a broken or forged log is
//      left exactly as it is, for `audit verify` to report; the epoch is retried at the next open);
//   2. seals each entry's personal fields under its person's key and re-hashes the chain from the first
//      changed entry on (entries before it keep their hashes; seqs, ids, times and all other fields stay);
//   3. re-anchors the new head and appends an `audit.reseal` entry naming the old head (seq and hash),
//      the first re-hashed seq and the counts: the log itself records that, where, and from which
//      verified head it was re-chained, and the entry is chained and anchored like any other.
// After it, `audit verify` and exports check the new chain exactly as before (the hash formula is
// unchanged: the sealed text is simply what the details hold). A witnessed head between the first
// re-hashed seq and the old head no longer matches its entry; verify checks such heads through the epoch
// entry (resealedHeadHash in personal.ts, used by audit verify and verify --file).

import type { Kysely } from 'kysely';
import type { KeyRing } from '../crypto/key-ring.js';
import type { Db } from '../db/connect.js';
import type { AuditRow, Database } from '../db/schema.js';
import { type Tx, writeTransaction } from '../db/tx.js';
import { actorForStorage } from './actors.js';
import { appendAudit } from './audit.repo.js';
import { anchorMac, createChainVerifier, entryHash, GENESIS_HASH } from './chain.js';
import { parseDetails, serializeDetails } from './details.js';
import { personKeyForWrite } from './person-keys.repo.js';
import { RESEAL_ACTION, sealDetails, subjectOf } from './personal.js';

export { RESEAL_ACTION };

/** meta key set once the log is in the sealed format. */
export const SEALED_META_KEY = 'audit_personal_sealed';
const PAGE = 1000;

export type ResealOutcome =
  | { readonly kind: 'already' }
  | { readonly kind: 'nothing-to-seal'; readonly entries: number }
  | {
      readonly kind: 'resealed';
      readonly entries: number;
      readonly resealed: number;
      readonly head: AuditRow;
    }
  | { readonly kind: 'chain-broken' };

class ChainBroken extends Error {}

/** Runs the epoch if the log has not had it yet (see the file comment). */
export async function resealAuditLog(
  db: Db,
  keys: KeyRing,
  anchorKey: Buffer,
  now: number,
): Promise<ResealOutcome> {
  if (await isSealedFormat(db.kysely)) return { kind: 'already' };
  try {
    return await writeTransaction(db, (tx) => reseal(tx, db, keys, anchorKey, now));
  } catch (error) {
    if (error instanceof ChainBroken) return { kind: 'chain-broken' };
    throw error;
  }
}

async function reseal(tx: Tx, db: Db, keys: KeyRing, anchorKey: Buffer, now: number): Promise<ResealOutcome> {
  // The anchor row lock (PostgreSQL) serialises this with every append; SQLite's BEGIN IMMEDIATE does.
  let anchorQuery = tx.selectFrom('audit_anchor').select(['seq', 'hash', 'mac']).where('id', '=', 1);
  if (db.dialect === 'postgres') anchorQuery = anchorQuery.forUpdate();
  const anchor = (await anchorQuery.executeTakeFirst()) ?? null;
  // Another process may have run the epoch between our check and our lock.
  if (await isSealedFormat(tx)) return { kind: 'already' };

  const verifier = createChainVerifier(anchor, anchorKey);
  let prevNew = GENESIS_HASH;
  let resealed = 0;
  let firstChanged: number | null = null;
  let entries = 0;
  let last: { seq: number; hash: string } | null = null;
  // The first page has no lower bound, so tampered rows with seq <= 0 are seen (and fail) too.
  let after: number | null = null;
  for (;;) {
    let query = tx.selectFrom('audit_log').selectAll().orderBy('seq').limit(PAGE);
    if (after !== null) query = query.where('seq', '>', after);
    const page = await query.execute();
    for (const row of page) {
      if (!verifier.push(row)) throw new ChainBroken();
      entries++;
      last = { seq: row.seq, hash: row.hash };
      const details = await sealedDetailsOf(tx, keys, row, now);
      const actor = await actorForStorage(tx, row.actor, row.at);
      const same = details === row.details && actor === row.actor;
      if (!same) resealed++;
      if (same && prevNew === row.prev_hash) {
        prevNew = row.hash;
        continue;
      }
      firstChanged ??= row.seq;
      const hash = entryHash(prevNew, { ...row, actor, details });
      await tx
        .updateTable('audit_log')
        .set({ actor, details, prev_hash: prevNew, hash })
        .where('seq', '=', row.seq)
        .execute();
      prevNew = hash;
    }
    const tail = page[page.length - 1];
    if (!tail || page.length < PAGE) break;
    after = tail.seq;
  }
  if (!verifier.finish().ok) throw new ChainBroken();

  if (firstChanged === null || last === null) {
    await markSealedFormat(tx, now);
    return { kind: 'nothing-to-seal', entries };
  }
  const head = { seq: last.seq, hash: prevNew, mac: anchorMac(anchorKey, last.seq, prevNew) };
  await tx.updateTable('audit_anchor').set(head).where('id', '=', 1).execute();
  const epoch = await appendAudit(tx, db.dialect, anchorKey, {
    actor: 'system',
    action: RESEAL_ACTION,
    targetType: 'audit',
    targetId: null,
    details: {
      previous_head_seq: last.seq,
      previous_head_hash: last.hash,
      first_rehashed_seq: firstChanged,
      resealed_entries: resealed,
    },
    at: now,
  });
  await markSealedFormat(tx, now);
  return { kind: 'resealed', entries, resealed, head: epoch };
}

async function isSealedFormat(db: Kysely<Database>): Promise<boolean> {
  const row = await db
    .selectFrom('meta')
    .select('value')
    .where('key', '=', SEALED_META_KEY)
    .executeTakeFirst();
  return row !== undefined;
}

/** Records that the log is in the sealed format (init does so for a new installation). */
export async function markSealedFormat(tx: Tx, now: number): Promise<void> {
  await tx
    .insertInto('meta')
    .values({ key: SEALED_META_KEY, value: String(now) })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
}

/** The row's details text with its personal fields sealed; the same string when there is nothing to seal. */
async function sealedDetailsOf(tx: Tx, keys: KeyRing, row: AuditRow, now: number): Promise<string> {
  const details = parseDetails(row.details);
  const subject = subjectOf(row.action, row.target_id, details);
  if (subject === null) return row.details;
  const key = await personKeyForWrite(tx, keys, subject, now);
  try {
    return serializeDetails(sealDetails(row.action, subject, key, details));
  } finally {
    key?.fill(0);
  }
}
