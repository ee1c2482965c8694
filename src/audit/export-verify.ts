// `tollgate audit verify --file`: checks an audit export offline — no database, no server — from its
// lines alone: the proof line (and its MAC, when the master key is at hand), then every entry with the
// chain verifier the database's own check uses (createHeadVerifier, against the head the proof names),
// then heads recorded elsewhere (the witness file, or a head given by hand). Names the first broken
// entry and its line. Pure over an async sequence of lines; the file is read by export-lines.ts.
import type { AuditRow } from '../db/schema.js';
import { type BreakReason, createHeadVerifier, type VerifyResult } from './chain.js';
import { type AuditDetails, parseDetails } from './details.js';
import { EXPORT_FORMAT, EXPORT_VERSION, type ExportProof, proofMacValid } from './export-proof.js';
import { RESEAL_ACTION, resealedHeadHash } from './personal.js';

export type ExportBreakReason =
  | BreakReason
  | 'proof-missing' // line 1 is not an export's proof line (not an export, or its start was cut)
  | 'proof-mac-invalid' // the proof line was not written with this master key (rewritten, or another key)
  | 'malformed-line'; // a line that is not one stored entry (bad JSON, a missing, extra or mistyped field)

export interface ExportBreak {
  /** 1-based chain position (the seq expected there), as `audit verify` reports it. */
  readonly index: number;
  readonly seq: number | null;
  readonly reason: ExportBreakReason;
  /** The file's line of that entry (the proof is line 1); null when there is no such line. */
  readonly line: number | null;
}

/** A head recorded outside the export, which its chain must hold. */
export interface ExpectedHead {
  readonly seq: number;
  readonly hash: string;
  /** Its installation, when the record names one (a witness line). */
  readonly installation?: string;
  /** Where it comes from, for the message: the witness file's path, or `--head`. */
  readonly source: string;
}

export type ExportVerdict =
  | {
      readonly ok: true;
      readonly entries: number;
      readonly head: { readonly seq: number; readonly hash: string };
      readonly installation: string;
      readonly exported_at: string;
      /** valid: checked with the master key; not-checked: no master key was given. */
      readonly proof_mac: 'valid' | 'not-checked';
      /** Heads recorded elsewhere that the chain was found to hold. */
      readonly expected_heads: number;
    }
  | {
      readonly ok: false;
      readonly entries: number;
      readonly firstBroken: ExportBreak;
      readonly detail: string;
    };

export interface VerifyExportOptions {
  /** The master key's export key: checks the proof's MAC. */
  readonly proofKey?: Buffer;
  readonly expected?: readonly ExpectedHead[];
}

export async function verifyExport(
  lines: AsyncIterable<string>,
  options: VerifyExportOptions = {},
): Promise<ExportVerdict> {
  const iterator = lines[Symbol.asyncIterator]();
  const first = await iterator.next();
  const proof = first.done ? null : parseProof(first.value);
  if (!proof)
    return broken(
      0,
      { index: 1, seq: null, reason: 'proof-missing', line: 1 },
      'line 1 is not an audit export proof',
    );
  if (options.proofKey && !proofMacValid(options.proofKey, proof))
    return broken(
      0,
      { index: 1, seq: null, reason: 'proof-mac-invalid', line: 1 },
      'the proof line was not written with this master key (rewritten, or exported under another key)',
    );

  const verifier = createHeadVerifier(proof.anchor, proof.anchor_verified);
  const expected = options.expected ?? [];
  const wanted = new Set(expected.map((h) => h.seq));
  const seen = new Map<number, string>();
  const epochs: AuditDetails[] = [];
  let position = 0;
  let line = 1;
  for (;;) {
    const next = await iterator.next();
    if (next.done) break;
    line++;
    const row = parseEntry(next.value);
    if (!row) {
      // A break the verifier is still confirming (a gap that may be a reordering) came first.
      const prior = verifier.current();
      if (prior) return chainBroken({ ok: false, entries: position, firstBroken: prior });
      return broken(
        position,
        { index: position + 1, seq: null, reason: 'malformed-line', line },
        `line ${line} is not a stored audit entry`,
      );
    }
    position++;
    if (wanted.has(row.seq)) seen.set(row.seq, row.hash);
    if (row.action === RESEAL_ACTION) epochs.push(parseDetails(row.details));
    if (!verifier.push(row)) break;
  }
  await iterator.return?.();
  const verdict = verifier.finish();
  if (!verdict.ok) return chainBroken(verdict);

  // The chain and its proof agree; now what was recorded elsewhere, earliest seq first.
  for (const head of [...expected].sort((a, b) => a.seq - b.seq)) {
    const at = { index: head.seq, seq: head.seq > verdict.head.seq ? null : head.seq };
    if (head.installation !== undefined && head.installation !== proof.installation)
      return broken(
        verdict.entries,
        { ...at, reason: 'witness-mismatch', line: null },
        `${head.source}: witnessed installation ${head.installation}, but the export is of ${proof.installation}`,
      );
    if (head.seq > verdict.head.seq)
      return broken(
        verdict.entries,
        { ...at, reason: 'witness-ahead', line: null },
        `${head.source}: head #${head.seq} is past the export's head #${verdict.head.seq} (newest entries cut, or an older log)`,
      );
    // A head witnessed before a reseal epoch is checked through the epoch's entry (personal.ts).
    const expectedHash = resealedHeadHash(epochs, head.seq, head.hash) ?? seen.get(head.seq);
    if (expectedHash !== head.hash)
      return broken(
        verdict.entries,
        { ...at, reason: 'witness-mismatch', line: head.seq + 1 },
        `${head.source}: entry #${head.seq} differs from the recorded one (history rewritten)`,
      );
  }
  return {
    ok: true,
    entries: verdict.entries,
    head: verdict.head,
    installation: proof.installation,
    exported_at: proof.exported_at,
    proof_mac: options.proofKey ? 'valid' : 'not-checked',
    expected_heads: expected.length,
  };
}

function broken(entries: number, firstBroken: ExportBreak, detail: string): ExportVerdict {
  return { ok: false, entries, firstBroken, detail };
}

function chainBroken(verdict: Extract<VerifyResult, { ok: false }>): ExportVerdict {
  const b = verdict.firstBroken;
  // Position k is line k + 1; a break without a row (missing tail, anchor failures) has no line.
  const line = b.seq === null ? null : b.index + 1;
  return broken(verdict.entries, { ...b, line }, DETAIL[b.reason] ?? b.reason);
}

const DETAIL: Partial<Record<BreakReason, string>> = {
  'hash-mismatch':
    "the entry's fields no longer hash to its hash (edited), or the chain does not end in the proof's head",
  'sequence-gap': 'an entry is missing here (deleted)',
  reordered: 'the entry here belongs elsewhere (moved)',
  'prev-hash-mismatch': 'the entry does not link to the one before it (that one was replaced)',
  'missing-tail': "the entries end before the proof's head (newest entries cut off)",
  'anchor-mac-invalid': 'the exporter found the anchor forged (its MAC did not verify)',
  'anchor-missing': 'the exported database had no anchor',
  'extra-entries': "entries past the proof's head",
};

const HEX64 = /^[0-9a-f]{64}$/;
const ENTRY_FIELDS = [
  'seq',
  'id',
  'at',
  'actor',
  'action',
  'target_type',
  'target_id',
  'details',
  'prev_hash',
  'hash',
] as const;

function objectOf(text: string): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

function parseProof(text: string): ExportProof | null {
  const v = objectOf(text);
  if (!v || v.format !== EXPORT_FORMAT || v.version !== EXPORT_VERSION) return null;
  const { installation, exported_at, anchor, anchor_verified, proof_mac } = v;
  if (typeof installation !== 'string' || typeof exported_at !== 'string') return null;
  if (typeof anchor_verified !== 'boolean' || typeof proof_mac !== 'string') return null;
  let head: ExportProof['anchor'] = null;
  if (anchor !== null) {
    if (typeof anchor !== 'object' || anchor === undefined) return null;
    const { seq, hash, mac } = anchor as Record<string, unknown>;
    if (!Number.isSafeInteger(seq) || typeof hash !== 'string' || typeof mac !== 'string') return null;
    head = { seq: seq as number, hash, mac };
  }
  return {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    installation,
    exported_at,
    anchor: head,
    anchor_verified,
    proof_mac,
  };
}

/** One stored entry, exactly its ten fields with their types; null otherwise. */
function parseEntry(text: string): AuditRow | null {
  const v = objectOf(text);
  if (!v) return null;
  const keys = Object.keys(v);
  if (keys.length !== ENTRY_FIELDS.length || !ENTRY_FIELDS.every((f) => Object.hasOwn(v, f))) return null;
  const { seq, id, at, actor, action, target_type, target_id, details, prev_hash, hash } = v;
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(at)) return null;
  if (typeof id !== 'string' || typeof actor !== 'string' || typeof action !== 'string') return null;
  if (target_type !== null && typeof target_type !== 'string') return null;
  if (target_id !== null && typeof target_id !== 'string') return null;
  if (typeof details !== 'string' || typeof prev_hash !== 'string' || typeof hash !== 'string') return null;
  if (!HEX64.test(prev_hash) || !HEX64.test(hash)) return null;
  return {
    seq: seq as number,
    id,
    at: at as number,
    actor,
    action,
    target_type,
    target_id,
    details,
    prev_hash,
    hash,
  };
}
