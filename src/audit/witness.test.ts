import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AuditAnchor, anchorMac } from './chain.js';
import { checkWitness, createWitness, readWitness, type WitnessRead } from './witness.js';

const KEY = Buffer.alloc(32, 7);
const ORG = 'org_witness';

function head(seq: number, key: Buffer = KEY): AuditAnchor {
  const hash = seq.toString(16).padStart(64, '0');
  return { seq, hash, mac: anchorMac(key, seq, hash) };
}

/** The database side of a check: entries 1..n hashed as head() names them. */
const hashes = (n: number) => (seq: number) => (seq <= n ? head(seq).hash : undefined);

describe('audit witness file', () => {
  let dir: string;
  let path: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-witness-'));
    path = join(dir, 'audit.witness');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('appends one JSON line per head, skips older heads, and reads them back', async () => {
    const witness = createWitness(path, ORG, () => undefined);
    await witness.record(head(1));
    await witness.record(head(2));
    await witness.record(head(1)); // committed earlier, recorded late: never moves the witness back
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      { v: 1, installation: ORG, seq: 1, hash: head(1).hash, mac: head(1).mac },
      { v: 1, installation: ORG, seq: 2, hash: head(2).hash, mac: head(2).mac },
    ]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const read = await readWitness(path);
    expect(read).toEqual({
      kind: 'ok',
      heads: [expect.objectContaining({ seq: 1 }), expect.objectContaining({ seq: 2 })],
    });
    expect(checkWitness(read, path, ORG, KEY, 2, hashes(2))).toEqual({ ok: true, seq: 2 });
  });

  it('stays bounded: past the size bound it is compacted to the newest head', async () => {
    const witness = createWitness(path, ORG, () => undefined, 1024);
    for (let seq = 1; seq <= 100; seq++) await witness.record(head(seq));
    expect(statSync(path).size).toBeLessThanOrEqual(1024 + 256);
    const read = await readWitness(path);
    if (read.kind !== 'ok') throw new Error(read.kind);
    expect(Math.max(...read.heads.map((h) => h.seq))).toBe(100);
    expect(read.heads.length).toBeLessThan(10);
    expect(checkWitness(read, path, ORG, KEY, 100, hashes(100))).toEqual({ ok: true, seq: 100 });
  });

  it('an unwritable path is reported, never thrown, and a later write to a good state recovers', async () => {
    const errors: string[] = [];
    const bad = join(dir, 'no-such-dir', 'audit.witness');
    const witness = createWitness(bad, ORG, (message) => errors.push(message));
    await expect(witness.record(head(1))).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/ENOENT.*#1 is only in the database/);
    expect(witness.lastError()).toBe(errors[0]);
    // Positive control: the same writer on a writable path succeeds and clears the error.
    const good = createWitness(path, ORG, (message) => errors.push(message));
    await good.record(head(1));
    expect(good.lastError()).toBeNull();
    expect(errors).toHaveLength(1);
  });

  it('a torn last line (crash mid-write) is ignored: the witness is one behind, which verifies', async () => {
    const witness = createWitness(path, ORG, () => undefined);
    await witness.record(head(1));
    await witness.record(head(2));
    appendFileSync(path, '{"v":1,"installation":"org_wit');
    const read = await readWitness(path);
    expect(checkWitness(read, path, ORG, KEY, 3, hashes(3))).toEqual({ ok: true, seq: 2 });
  });

  it('names each disagreement; a witness behind the database is fine', () => {
    const ok = (heads: AuditAnchor[], installation = ORG): WitnessRead => ({
      kind: 'ok',
      heads: heads.map((h) => ({ ...h, installation })),
    });
    const reason = (read: WitnessRead, dbHead: number, hashAt = hashes(dbHead)) => {
      const verdict = checkWitness(read, path, ORG, KEY, dbHead, hashAt);
      return verdict.ok ? 'ok' : verdict.firstBroken.reason;
    };
    expect(reason(ok([head(5)]), 9)).toBe('ok'); // behind: a crash between commit and witness write
    expect(reason(ok([head(5)]), 5)).toBe('ok');
    expect(reason(ok([head(6)]), 5)).toBe('witness-ahead'); // newest entries lost, or an older database
    expect(reason(ok([head(5)]), 9, () => 'f'.repeat(64))).toBe('witness-mismatch'); // history rewritten
    expect(reason(ok([head(5)], 'org_other'), 9)).toBe('witness-mismatch'); // another installation
    expect(reason(ok([head(5, Buffer.alloc(32, 1))]), 9)).toBe('witness-mac-invalid'); // forged line
    expect(reason({ kind: 'missing' }, 9)).toBe('witness-missing');
    expect(reason({ kind: 'unreadable', detail: 'EACCES' }, 9)).toBe('witness-unreadable');
  });

  it('a line that is not a head makes the file unreadable, not silently shorter', async () => {
    writeFileSync(path, `${JSON.stringify({ v: 1, installation: ORG, ...head(1) })}\nnot json\n`);
    expect((await readWitness(path)).kind).toBe('unreadable');
    writeFileSync(path, '');
    expect((await readWitness(path)).kind).toBe('unreadable');
  });
});
