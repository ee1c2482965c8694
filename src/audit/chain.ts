// The audit hash chain and its verifier: pure functions over rows, no database, no clock.
//
// Each entry's hash covers the previous entry's hash and the entry's own fields, so editing,
// deleting or moving a row breaks the chain at that row. The head (seq, hash) is also kept in an
// anchor outside audit_log, MAC'd with a key derived from the master key: without that key nobody
// can truncate the newest entries, append entries or rewrite the whole table unnoticed.
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
  | 'anchor-missing' // entries exist but the anchor row is gone
  | 'extra-entries'; // entries exist past the anchored head (appended without the anchor key)

export interface ChainBreak {
  /** 1-based position in the chain, i.e. the seq that was expected there. */
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
}

/**
 * An incremental verifier, so a million-row log can be checked page by page in constant memory.
 * Checks at each position i (expected seq i), in order: anchor present and authentic, i not past
 * the anchored head, seq === i, link (prev_hash) and content (hash), then the anchored hash at
 * i === anchor.seq; after the last row, that the anchored head was reached.
 */
export function createChainVerifier(anchor: AuditAnchor | null, anchorKey: Buffer): ChainVerifier {
  let entries = 0;
  let head = { seq: 0, hash: GENESIS_HASH };
  let broken: ChainBreak | null = null;
  // A sequence gap found at a row may turn out to be a reordering once the next row is seen
  // (an array [1, 2, 4, 3] is out of order, not missing 3): the verdict waits for one more row.
  let gapSeq: number | null = null;

  // No entry can be proven against a forged anchor, so the first unproven entry is position 1.
  if (anchor && !anchorMacValid(anchorKey, anchor))
    broken = { index: 1, seq: null, reason: 'anchor-mac-invalid' };

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
    if (anchor && entries < anchor.seq) {
      return { ok: false, entries, firstBroken: { index: entries + 1, seq: null, reason: 'missing-tail' } };
    }
    // Only reachable with zero entries: an anchor at seq 0 must still name the genesis hash.
    if (anchor && anchor.seq === 0 && anchor.hash !== GENESIS_HASH) {
      return { ok: false, entries, firstBroken: { index: 1, seq: null, reason: 'hash-mismatch' } };
    }
    return { ok: true, entries, head };
  }

  return { push, finish };
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
