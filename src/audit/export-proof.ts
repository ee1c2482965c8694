// The proof line an audit export starts with: which installation it is from, when it was written, the
// anchored chain head (seq, hash, and the anchor's MAC as stored), whether the exporter found that
// anchor authentic, and a MAC over all of it under a key derived from the master key alone.
//
// What each party can check (see `audit verify --file`, export-verify.ts):
// - Anyone, with the file alone: every entry's hash recomputes from its fields, links to the previous
//   entry, seqs run 1, 2, 3… without a gap, and the entries reach the head the proof names with that hash
//   — so an edited, moved or deleted entry, or newest entries cut off, are caught while the proof line
//   is intact.
// - Anyone holding a head recorded elsewhere (the witness file of audit.witness_path, or a head noted
//   from an earlier `audit verify`): that the export's chain holds that head — catching a rewrite of the
//   whole file, proof line included, or a tail cut together with a rewritten proof.
// - Whoever holds the installation's master key: that the proof line was written by Tollgate with that
//   key (`proof_mac`), which a rewrite of the file cannot recompute. The anchor's own MAC needs the
//   installation's sealed pepper too (in the database), so it is carried as evidence, not re-checked.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { deriveKey, type MasterKey } from '../crypto/master-key.js';
import type { AuditAnchor } from './chain.js';

export const EXPORT_FORMAT = 'tollgate-audit-export';
export const EXPORT_VERSION = 1;

export interface ExportProof {
  readonly format: typeof EXPORT_FORMAT;
  readonly version: typeof EXPORT_VERSION;
  readonly installation: string;
  /** ISO time the export was written. */
  readonly exported_at: string;
  /** The anchor as stored (null: the database has none, which verify reports as anchor-missing). */
  readonly anchor: AuditAnchor | null;
  /** Whether the exporter found the anchor's MAC valid under the installation's anchor key. */
  readonly anchor_verified: boolean;
  /** hex HMAC-SHA-256 of the fields above under the master key's export key. */
  readonly proof_mac: string;
}

export type UnsignedProof = Omit<ExportProof, 'proof_mac'>;

/** The key proof lines are MAC'd with: derived from the master key alone, so no database is needed. */
export function exportProofKey(master: MasterKey): Buffer {
  return deriveKey(master, 'audit-export');
}

/** The proof's fields in a fixed order (a JSON array: no key-order ambiguity). */
function canonicalProof(p: UnsignedProof): string {
  return JSON.stringify([
    p.format,
    p.version,
    p.installation,
    p.exported_at,
    p.anchor?.seq ?? null,
    p.anchor?.hash ?? null,
    p.anchor?.mac ?? null,
    p.anchor_verified,
  ]);
}

export function proofMac(key: Buffer, p: UnsignedProof): string {
  return createHmac('sha256', key)
    .update(`tollgate-audit-export|${canonicalProof(p)}`)
    .digest('hex');
}

export function signProof(key: Buffer, p: UnsignedProof): ExportProof {
  return { ...p, proof_mac: proofMac(key, p) };
}

/** True when the proof's MAC was made with `key` (constant-time compare). */
export function proofMacValid(key: Buffer, p: ExportProof): boolean {
  const expected = Buffer.from(proofMac(key, p), 'hex');
  const actual = Buffer.from(p.proof_mac, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
