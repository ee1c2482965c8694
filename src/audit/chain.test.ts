import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AuditRow } from '../db/schema.js';
import {
  type AuditAnchor,
  type AuditEntryFields,
  anchorMac,
  canonicalEntry,
  createChainVerifier,
  entryHash,
  GENESIS_HASH,
  installationAnchorKey,
  verifyChain,
} from './chain.js';

const KEY = Buffer.alloc(32, 7);

function fieldsAt(seq: number): AuditEntryFields {
  return {
    seq,
    id: `aud_${seq}`,
    at: 1_700_000_000_000 + seq,
    actor: 'usr_alice',
    action: seq % 2 === 0 ? 'key.issue' : 'key.revoke',
    target_type: 'key',
    target_id: `key_${seq}`,
    details: JSON.stringify({ n: seq }),
  };
}

/** Chains `fields` onto prevHash in order, recomputing every hash (what a writer with DB access can do). */
function chainOf(fields: readonly AuditEntryFields[], prevHash = GENESIS_HASH): AuditRow[] {
  const rows: AuditRow[] = [];
  let prev = prevHash;
  for (const f of fields) {
    const row = { ...f, prev_hash: prev, hash: entryHash(prev, f) };
    rows.push(row);
    prev = row.hash;
  }
  return rows;
}

function build(n: number): { rows: AuditRow[]; anchor: AuditAnchor | null } {
  const rows = chainOf(Array.from({ length: n }, (_, i) => fieldsAt(i + 1)));
  const last = rows[rows.length - 1];
  return { rows, anchor: last ? anchorOf(last) : null };
}

function anchorOf(row: AuditRow, key = KEY): AuditAnchor {
  return { seq: row.seq, hash: row.hash, mac: anchorMac(key, row.seq, row.hash) };
}

function at(rows: AuditRow[], seq: number): AuditRow {
  const row = rows[seq - 1];
  if (!row) throw new Error(`no row ${seq}`);
  return row;
}

function broken(rows: readonly AuditRow[], anchor: AuditAnchor | null, key: Buffer = KEY) {
  const result = verifyChain(rows, anchor, key);
  if (result.ok) throw new Error('expected a broken chain');
  return result;
}

describe('hashing primitives', () => {
  it('serialises the fields in the fixed order, unambiguously', () => {
    const f = fieldsAt(3);
    expect(canonicalEntry(f)).toBe(
      '[3,"aud_3",1700000000003,"usr_alice","key.revoke","key","key_3","{\\"n\\":3}"]',
    );
    // Separator characters inside a field cannot shift content into the next field.
    const a = canonicalEntry({ ...f, actor: 'a","b', action: 'c' });
    const b = canonicalEntry({ ...f, actor: 'a', action: 'b","c' });
    expect(a).not.toBe(b);
    expect(canonicalEntry({ ...f, target_id: null })).toContain(',null,');
  });

  it('hashes prevHash, a newline and the canonical entry', () => {
    const f = fieldsAt(1);
    const expected = createHash('sha256')
      .update(`${GENESIS_HASH}\n${canonicalEntry(f)}`)
      .digest('hex');
    expect(entryHash(GENESIS_HASH, f)).toBe(expected);
    expect(GENESIS_HASH).toMatch(/^0{64}$/);
  });

  it('MACs the anchor over a labelled seq and hash', () => {
    const expected = createHmac('sha256', KEY)
      .update(`tollgate-audit-anchor|5|${'a'.repeat(64)}`)
      .digest('hex');
    expect(anchorMac(KEY, 5, 'a'.repeat(64))).toBe(expected);
    expect(anchorMac(Buffer.alloc(32, 8), 5, 'a'.repeat(64))).not.toBe(expected);
  });
});

describe('verifyChain on an intact log', () => {
  it('an empty table with its genesis anchor verifies; without any anchor it is a deleted log', () => {
    const genesis = { seq: 0, hash: GENESIS_HASH, mac: anchorMac(KEY, 0, GENESIS_HASH) };
    expect(verifyChain([], genesis, KEY)).toEqual({
      ok: true,
      entries: 0,
      head: { seq: 0, hash: GENESIS_HASH },
    });
    // Every row and the anchor deleted: an initialised installation always has an anchor.
    expect(verifyChain([], null, KEY)).toEqual({
      ok: false,
      entries: 0,
      firstBroken: { index: 1, seq: null, reason: 'anchor-missing' },
    });
  });

  it('an anchor MACs only for its own installation: the key binds the installation id and pepper', () => {
    const { rows, anchor } = build(4);
    if (!anchor) throw new Error('no anchor');
    const pepper = Buffer.alloc(32, 3);
    const mine = installationAnchorKey(KEY, 'org_mine', pepper);
    const theirs = installationAnchorKey(KEY, 'org_theirs', pepper);
    const otherPepper = installationAnchorKey(KEY, 'org_mine', Buffer.alloc(32, 4));
    const sealed = { ...anchor, mac: anchorMac(mine, anchor.seq, anchor.hash) };
    expect(verifyChain(rows, sealed, mine).ok).toBe(true);
    expect(broken(rows, sealed, theirs).firstBroken.reason).toBe('anchor-mac-invalid');
    expect(broken(rows, sealed, otherPepper).firstBroken.reason).toBe('anchor-mac-invalid');
    // The legacy format (the bare master-derived key) does not verify as the installation's.
    expect(broken(rows, anchor, mine).firstBroken.reason).toBe('anchor-mac-invalid');
  });

  it('accepts a chain whose head matches the anchor', () => {
    const { rows, anchor } = build(10);
    expect(verifyChain(rows, anchor, KEY)).toEqual({
      ok: true,
      entries: 10,
      head: { seq: 10, hash: at(rows, 10).hash },
    });
  });
});

describe('verifyChain names the first broken position', () => {
  it('edited row k → hash-mismatch at k', () => {
    const { rows, anchor } = build(10);
    rows[4] = { ...at(rows, 5), action: 'key.unrevoke' };
    expect(broken(rows, anchor)).toEqual({
      ok: false,
      entries: 4,
      firstBroken: { index: 5, seq: 5, reason: 'hash-mismatch' },
    });
  });

  it('edited and re-hashed row k → its successor no longer links: prev-hash-mismatch at k+1', () => {
    const { rows, anchor } = build(10);
    const edited = { ...at(rows, 5), actor: 'usr_mallory' };
    rows[4] = { ...edited, hash: entryHash(edited.prev_hash, edited) };
    expect(broken(rows, anchor).firstBroken).toEqual({ index: 6, seq: 6, reason: 'prev-hash-mismatch' });
  });

  it('edited and re-hashed newest row → the anchored head differs: hash-mismatch at the anchor seq', () => {
    const { rows, anchor } = build(10);
    const edited = { ...at(rows, 10), actor: 'usr_mallory' };
    rows[9] = { ...edited, hash: entryHash(edited.prev_hash, edited) };
    expect(broken(rows, anchor).firstBroken).toEqual({ index: 10, seq: 10, reason: 'hash-mismatch' });
  });

  it('deleted middle row k → sequence-gap at k, finding k+1', () => {
    const { rows, anchor } = build(10);
    rows.splice(3, 1);
    expect(broken(rows, anchor)).toEqual({
      ok: false,
      entries: 3,
      firstBroken: { index: 4, seq: 5, reason: 'sequence-gap' },
    });
  });

  it('rows moved with their seq (out of order) → reordered at the first displaced position', () => {
    const { rows, anchor } = build(10);
    const swapped = [...rows];
    [swapped[2], swapped[5]] = [at(rows, 6), at(rows, 3)];
    expect(broken(swapped, anchor).firstBroken).toEqual({ index: 3, seq: 6, reason: 'reordered' });
    const adjacent = [...rows];
    [adjacent[8], adjacent[9]] = [at(rows, 10), at(rows, 9)];
    expect(broken(adjacent, anchor).firstBroken).toEqual({ index: 9, seq: 10, reason: 'reordered' });
  });

  it('contents swapped between two seqs → reordered at the lower one', () => {
    const { rows, anchor } = build(10);
    const { seq: s3, ...c3 } = at(rows, 3);
    const { seq: s7, ...c7 } = at(rows, 7);
    rows[2] = { seq: s3, ...c7 };
    rows[6] = { seq: s7, ...c3 };
    expect(broken(rows, anchor).firstBroken).toEqual({ index: 3, seq: 3, reason: 'reordered' });
  });

  it('a duplicated seq → reordered at the duplicate', () => {
    const { rows, anchor } = build(10);
    rows.splice(4, 0, at(rows, 4));
    expect(broken(rows, anchor).firstBroken).toEqual({ index: 5, seq: 4, reason: 'reordered' });
  });

  it('deleted newest m rows → missing-tail at last seq + 1', () => {
    const { rows, anchor } = build(10);
    expect(broken(rows.slice(0, 8), anchor)).toEqual({
      ok: false,
      entries: 8,
      firstBroken: { index: 9, seq: null, reason: 'missing-tail' },
    });
    expect(broken([], anchor).firstBroken).toEqual({ index: 1, seq: null, reason: 'missing-tail' });
  });

  it('a gap before the anchored head → sequence-gap, not missing-tail', () => {
    const { rows, anchor } = build(10);
    rows.splice(8, 1);
    expect(broken(rows, anchor).firstBroken).toEqual({ index: 9, seq: 10, reason: 'sequence-gap' });
  });

  it('whole table rewritten as a valid chain → hash-mismatch at the anchor seq', () => {
    const { rows, anchor } = build(10);
    const rewritten = chainOf(
      rows.map((r, i) => ({ ...fieldsAt(i + 1), actor: r.actor === 'x' ? 'y' : 'x' })),
    );
    expect(broken(rewritten, anchor)).toEqual({
      ok: false,
      entries: 9,
      firstBroken: { index: 10, seq: 10, reason: 'hash-mismatch' },
    });
  });

  it('whole table rewritten longer → hash-mismatch at the anchor seq; shorter → missing-tail', () => {
    const { anchor } = build(10);
    const fake = (n: number) =>
      chainOf(Array.from({ length: n }, (_, i) => ({ ...fieldsAt(i + 1), actor: 'x' })));
    expect(broken(fake(12), anchor).firstBroken).toEqual({ index: 10, seq: 10, reason: 'hash-mismatch' });
    expect(broken(fake(7), anchor).firstBroken).toEqual({ index: 8, seq: null, reason: 'missing-tail' });
  });

  it('forged anchor (MAC not made with the key) → anchor-mac-invalid at 1', () => {
    const { rows } = build(10);
    const forged = anchorOf(at(rows, 8), Buffer.alloc(32, 9));
    expect(broken(rows.slice(0, 8), forged)).toEqual({
      ok: false,
      entries: 0,
      firstBroken: { index: 1, seq: null, reason: 'anchor-mac-invalid' },
    });
    const edited = { ...anchorOf(at(rows, 10)), seq: 8 };
    expect(broken(rows, edited).firstBroken.reason).toBe('anchor-mac-invalid');
    expect(broken([], forged).firstBroken.reason).toBe('anchor-mac-invalid');
    expect(broken(rows, { ...anchorOf(at(rows, 10)), mac: 'zz' }).firstBroken.reason).toBe(
      'anchor-mac-invalid',
    );
  });

  it('rows without an anchor → anchor-missing at 1', () => {
    const { rows } = build(3);
    expect(broken(rows, null)).toEqual({
      ok: false,
      entries: 0,
      firstBroken: { index: 1, seq: 1, reason: 'anchor-missing' },
    });
  });

  it('rows after the anchored head → extra-entries at anchor seq + 1', () => {
    const { rows, anchor } = build(10);
    const appended = [...rows, ...chainOf([fieldsAt(11), fieldsAt(12)], at(rows, 10).hash)];
    expect(broken(appended, anchor)).toEqual({
      ok: false,
      entries: 10,
      firstBroken: { index: 11, seq: 11, reason: 'extra-entries' },
    });
  });

  it('an anchor at seq 0 must name the genesis hash', () => {
    const genesis = { seq: 0, hash: GENESIS_HASH, mac: anchorMac(KEY, 0, GENESIS_HASH) };
    expect(verifyChain([], genesis, KEY).ok).toBe(true);
    const other = { seq: 0, hash: 'f'.repeat(64), mac: anchorMac(KEY, 0, 'f'.repeat(64)) };
    expect(broken([], other).firstBroken).toEqual({ index: 1, seq: null, reason: 'hash-mismatch' });
  });
});

describe('createChainVerifier', () => {
  it('stops asking for rows once the verdict is final', () => {
    const { rows, anchor } = build(10);
    rows[2] = { ...at(rows, 3), action: 'x' };
    const verifier = createChainVerifier(anchor, KEY);
    expect(verifier.push(at(rows, 1))).toBe(true);
    expect(verifier.push(at(rows, 2))).toBe(true);
    expect(verifier.push(at(rows, 3))).toBe(false);
    expect(verifier.finish()).toEqual(verifyChain(rows, anchor, KEY));
  });

  it('verifies a long log streamed one row at a time, in constant memory', () => {
    const n = 200_000;
    let prev = GENESIS_HASH;
    // The anchor is only known after generating, so generate twice: once for the head, once to verify.
    for (let seq = 1; seq <= n; seq++) prev = entryHash(prev, fieldsAt(seq));
    const head = prev;
    const anchored = createChainVerifier({ seq: n, hash: head, mac: anchorMac(KEY, n, head) }, KEY);
    prev = GENESIS_HASH;
    for (let seq = 1; seq <= n; seq++) {
      const f = fieldsAt(seq);
      const hash = entryHash(prev, f);
      if (!anchored.push({ ...f, prev_hash: prev, hash })) break;
      prev = hash;
    }
    expect(anchored.finish()).toEqual({ ok: true, entries: n, head: { seq: n, hash: head } });
  }, 60_000);
});

describe('property: a single edited row is reported at its position', () => {
  type Field =
    | 'id'
    | 'at'
    | 'actor'
    | 'action'
    | 'target_type'
    | 'target_id'
    | 'details'
    | 'prev_hash'
    | 'hash'
    | 'seq';
  const fields: Field[] = [
    'id',
    'at',
    'actor',
    'action',
    'target_type',
    'target_id',
    'details',
    'prev_hash',
    'hash',
    'seq',
  ];

  function edit(row: AuditRow, field: Field, text: string, delta: number): AuditRow {
    switch (field) {
      case 'at':
        return { ...row, at: row.at + delta };
      case 'seq':
        return { ...row, seq: row.seq + (delta % 2 === 0 ? delta : -delta) };
      case 'target_type':
      case 'target_id':
        return { ...row, [field]: row[field] === null ? text : null };
      default:
        return { ...row, [field]: `${row[field]}${text}` };
    }
  }

  it('for random n, k and field, the first broken index is k', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 40 })
          .chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 1, max: n }))),
        fc.constantFrom(...fields),
        fc.string({ minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 1000 }),
        ([n, k], field, text, delta) => {
          const { rows, anchor } = build(n);
          rows[k - 1] = edit(at(rows, k), field, text, delta);
          const result = verifyChain(rows, anchor, KEY);
          expect(result.ok).toBe(false);
          if (result.ok) return;
          expect(result.firstBroken.index).toBe(k);
          expect(result.entries).toBe(k - 1);
          if (field !== 'seq' && field !== 'prev_hash')
            expect(result.firstBroken.reason).toBe('hash-mismatch');
        },
      ),
      { numRuns: 500 },
    );
  });
});
