// The audit hash chain and its verifier: pure functions over rows, no database, no clock.
//
// Each entry's hash covers the previous entry's hash and the entry's own fields, so editing,
// deleting or moving a row breaks the chain at that row. The head (seq, hash) is also kept in an
// anchor outside audit_log, MAC'd with a key derived from the master key: without that key nobody
// can truncate the newest entries, append entries or rewrite the whole table unnoticed.
//
// What an attacker with write access to the database but WITHOUT the master key can and cannot do:
// - Edit, delete, reorder or append rows, or rewrite the whole table as a self-consistent chain:
//   caught, since the anchor names the true head and its MAC cannot be recomputed.
// - Delete every row AND the anchor: caught. `init` always writes the first entry, so an opened
//   installation (org id, master-key check and sealed pepper present in meta: without them it does
//   not open at all) must have an anchor; a missing one is `anchor-missing` even with zero rows, and
//   appends refuse to start a fresh chain (only `init` may write the genesis anchor).
// - Copy in another installation's anchor and rows (say one sharing the master key file): caught.
//   The anchor key is not the master-derived key itself but installationAnchorKey(), an HMAC of it
//   over the installation id (meta org_id) and the installation's random pepper (sealed under the
//   master key in meta). The master-key check value is a function of the master key alone, so the
//   key's own derivation already binds it; the pepper is what is secret and unique per installation.
//   Copying the other installation's org id and pepper too makes this database that installation's
//   (every gateway key and admin token of this one stops matching): that is a replacement of the
//   whole database, which only a witness outside the database can catch (below).
// - Delete the meta rows as well: the installation no longer opens (`not_initialised`), so nothing
//   verifies as a clean log; `init` refuses a database that holds Tollgate tables without them.
// - Replace the whole database (rows + anchor + meta) with a backup or another installation's: not
//   detectable from inside the database. The optional witness file (audit.witness_path, see
//   witness.ts) holds each committed head outside it; `audit verify` then requires the witnessed
//   head to exist in the database's chain with the same hash.
// With the master key an attacker can forge anything in the database; only the witness (kept where
// that attacker cannot write) still catches a rewrite of history it has seen.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { AuditRow } from '../db/schema.js';

/** The prev_hash of the first entry (seq 1). */
export const GENESIS_HASH = '0'.repeat(64);

/** The fields an entry's hash covers (everything but prev_hash, which is chained in separately, and hash). */
export type AuditEntryFields = Omit<AuditRow, 'prev_hash' | 'hash'>;

export interface AuditAnchor {
  readonly seq: number;
  readonly hash: string;
  readonly mac: string;
}

export type BreakReason =
  | 'hash-mismatch' // the entry's fields no longer hash to its stored hash (edited), or the anchored head differs
  | 'sequence-gap' // the entry expected at this position is missing (a later seq is found there)
  | 'reordered' // the entry found here belongs elsewhere (seq went backwards, or its link and hash both fail)
  | 'prev-hash-mismatch' // the entry is intact but does not link to its predecessor (predecessor replaced)
  | 'missing-tail' // the anchor names a later head than the newest entry (newest entries deleted)
  | 'anchor-mac-invalid' // the anchor was not written with the anchor key (forged or edited)
  | 'anchor-missing' // the anchor row is gone (an initialised installation always has one)
  | 'extra-entries' // entries exist past the anchored head (appended without the anchor key)
  | 'witness-missing' // audit.witness_path is set but the file does not exist
  | 'witness-unreadable' // the witness file cannot be read or holds no valid head
  | 'witness-mac-invalid' // a witnessed head's MAC was not made with this installation's anchor key
  | 'witness-ahead' // the witness names a head past the database's head (newest entries lost, or database replaced)
  | 'witness-mismatch'; // the database entry at a witnessed seq has another hash (history rewritten or replaced)

export interface ChainBreak {
  /**
   * 1-based position in the chain, i.e. the seq that was expected there. For witness-* reasons: the
   * witnessed seq that disagrees, or (file missing or unreadable) the database's head seq.
   */
  readonly index: number;
  /** The seq of the row found at that position; null when there is no row (anchor failures, missing tail). */
  readonly seq: number | null;
  readonly reason: BreakReason;
}

export type VerifyResult =
  | {
      readonly ok: true;
      readonly entries: number;
      readonly head: { readonly seq: number; readonly hash: string };
    }
  | { readonly ok: false; readonly entries: number; readonly firstBroken: ChainBreak };

/** Deterministic serialisation of an entry: a JSON array in a fixed field order (no key-order ambiguity). */
export function canonicalEntry(e: AuditEntryFields): string {
  return JSON.stringify([e.seq, e.id, e.at, e.actor, e.action, e.target_type, e.target_id, e.details]);
}

/** hex SHA-256 over `prevHash + "\n" + canonicalEntry(e)`. */
export function entryHash(prevHash: string, e: AuditEntryFields): string {
  return createHash('sha256')
    .update(`${prevHash}\n${canonicalEntry(e)}`)
    .digest('hex');
}

/**
 * The anchor key of one installation: HMAC of the master-derived audit key over the installation id
 * and its pepper, so an anchor (or witness line) from another installation never verifies here,
 * even one sharing the master key. Anchors MAC'd with the bare master-derived key are the legacy
 * format, upgraded when the installation is opened (see upgradeLegacyAnchor).
 */
export function installationAnchorKey(
  masterAuditKey: Buffer,
  installationId: string,
  pepper: Buffer,
): Buffer {
  return createHmac('sha256', masterAuditKey)
    .update(`tollgate-audit-anchor-v2|${installationId.length}:${installationId}|`)
    .update(pepper)
    .digest();
}

/** hex HMAC-SHA-256 binding the chain head to the anchor key. */
export function anchorMac(key: Buffer, seq: number, hash: string): string {
  return createHmac('sha256', key).update(`tollgate-audit-anchor|${seq}|${hash}`).digest('hex');
}

/** True if the anchor's MAC was made with `key` (constant-time compare: the MAC is the secret-derived part). */
export function anchorMacValid(key: Buffer, anchor: AuditAnchor): boolean {
  const expected = Buffer.from(anchorMac(key, anchor.seq, anchor.hash), 'hex');
  const actual = Buffer.from(anchor.mac, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export interface ChainVerifier {
  /** Feeds the next row in seq order; returns false once the verdict is final and more rows would not change it. */
  push(row: AuditRow): boolean;
  /** The verdict after the last row. */
  finish(): VerifyResult;
  /** The first break found so far (one still being confirmed included), or null. */
  current(): ChainBreak | null;
}

/**
 * An incremental verifier, so a million-row log can be checked page by page in constant memory.
 * Checks at each position i (expected seq i), in order: anchor present and authentic, i not past
 * the anchored head, seq === i, link (prev_hash) and content (hash), then the anchored hash at
 * i === anchor.seq; after the last row, that the anchored head was reached.
 */
export function createChainVerifier(anchor: AuditAnchor | null, anchorKey: Buffer): ChainVerifier {
  return createHeadVerifier(anchor, anchor === null || anchorMacValid(anchorKey, anchor));
}

/**
 * The same checks against a head whose authenticity was decided elsewhere: `authentic` false fails at
 * position 1 (anchor-mac-invalid), as a forged anchor does. An audit export's verifier uses it with the
 * head its proof line names (export-verify.ts).
 */
export function createHeadVerifier(
  anchor: { readonly seq: number; readonly hash: string } | null,
  authentic: boolean,
): ChainVerifier {
  let entries = 0;
  let head = { seq: 0, hash: GENESIS_HASH };
  let broken: ChainBreak | null = null;
  // A sequence gap found at a row may turn out to be a reordering once the next row is seen
  // (an array [1, 2, 4, 3] is out of order, not missing 3): the verdict waits for one more row.
  let gapSeq: number | null = null;

  // No entry can be proven against a forged anchor, so the first unproven entry is position 1.
  if (anchor && !authentic) broken = { index: 1, seq: null, reason: 'anchor-mac-invalid' };

  const fail = (index: number, seq: number | null, reason: BreakReason): false => {
    broken = { index, seq, reason };
    return false;
  };

  function check(row: AuditRow): ChainBreak['reason'] | null {
    const linked = row.prev_hash === head.hash;
    const intact = entryHash(row.prev_hash, row) === row.hash;
    if (linked && intact) return null;
    if (linked) return 'hash-mismatch';
    // Intact but unlinked: the predecessor was replaced (e.g. edited and re-hashed).
    // Neither: the row carries another position's link, i.e. it was moved here.
    return intact ? 'prev-hash-mismatch' : 'reordered';
  }

  function push(row: AuditRow): boolean {
    if (broken) {
      if (gapSeq !== null && broken.reason === 'sequence-gap' && row.seq < gapSeq) {
        broken = { ...broken, reason: 'reordered' };
      }
      gapSeq = null;
      return false;
    }
    const index = entries + 1;
    if (!anchor) return fail(1, row.seq, 'anchor-missing');
    if (index > anchor.seq) return fail(index, row.seq, 'extra-entries');
    if (row.seq > index) {
      gapSeq = row.seq;
      fail(index, row.seq, 'sequence-gap');
      return true;
    }
    if (row.seq < index) return fail(index, row.seq, 'reordered');
    const reason = check(row);
    if (reason) return fail(index, row.seq, reason);
    // The anchor seals the head: a wholesale rewrite yields a valid chain with a different hash here.
    if (index === anchor.seq && row.hash !== anchor.hash) return fail(index, row.seq, 'hash-mismatch');
    entries = index;
    head = { seq: row.seq, hash: row.hash };
    return true;
  }

  function finish(): VerifyResult {
    if (broken) return { ok: false, entries, firstBroken: broken };
    // An initialised installation has written at least its `install.init` entry: no anchor means
    // the log was deleted, not that it was never written.
    if (!anchor)
      return { ok: false, entries, firstBroken: { index: 1, seq: null, reason: 'anchor-missing' } };
    if (entries < anchor.seq) {
      return { ok: false, entries, firstBroken: { index: entries + 1, seq: null, reason: 'missing-tail' } };
    }
    // Only reachable with zero entries: an anchor at seq 0 must still name the genesis hash.
    if (anchor.seq === 0 && anchor.hash !== GENESIS_HASH) {
      return { ok: false, entries, firstBroken: { index: 1, seq: null, reason: 'hash-mismatch' } };
    }
    return { ok: true, entries, head };
  }

  return { push, finish, current: () => broken };
}

/** Verifies rows ordered by seq against the anchor; names the first broken position. */
export function verifyChain(
  rows: readonly AuditRow[],
  anchor: AuditAnchor | null,
  anchorKey: Buffer,
): VerifyResult {
  const verifier = createChainVerifier(anchor, anchorKey);
  for (const row of rows) {
    if (!verifier.push(row)) break;
  }
  return verifier.finish();
}
