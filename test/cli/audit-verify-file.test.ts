// `tollgate audit verify --file`: an export checked offline — without a database (the home named does
// not exist) and without a server. A clean export verifies; an edited entry, a reordered pair, a deleted
// middle entry, a cut tail and a garbled line are each named with the first broken entry and its line;
// a wholesale rewrite with recomputed hashes is caught by the proof's head while the proof line stands,
// and once the proof line is rewritten too, only by what the file cannot forge: the proof MAC (master
// key), the witness file, or a head recorded earlier — each shown next to the same file passing without it.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryHash, GENESIS_HASH } from '../../src/audit/chain.js';
import type { AuditRow } from '../../src/db/schema.js';
import { type CliHome, type CliResult, runCli, tempHome } from '../helpers/cli.js';

type Proof = Record<string, unknown> & { anchor: { seq: number; hash: string; mac: string } };

describe('audit verify --file', () => {
  let cli: CliHome;
  let dir: string;
  let proof: Proof;
  let rows: AuditRow[];
  let headFromVerify: { seq: number; hash: string };

  /** The CLI with no installation at all: the home does not exist; the master key only where given. */
  function offline(argv: string[], env: Record<string, string> = {}): Promise<CliResult> {
    return runCli(argv, { TOLLGATE_HOME: join(dir, 'no-home'), TOLLGATE_TEST_CWD: dir, ...env });
  }

  /** Writes an export file from a proof and rows (as given: the caller tampers). */
  async function file(name: string, p: unknown, r: readonly unknown[]): Promise<string> {
    const path = join(dir, name);
    await writeFile(
      path,
      `${[p, ...r].map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join('\n')}\n`,
    );
    return path;
  }

  /** Rows re-chained from `from` on, hashes recomputed (what a writer with the file can do). */
  function rechain(input: readonly AuditRow[]): AuditRow[] {
    let prev = GENESIS_HASH;
    return input.map((row) => {
      const fields = { ...row, prev_hash: prev };
      const hash = entryHash(prev, fields);
      prev = hash;
      return { ...fields, hash };
    });
  }

  async function broken(path: string, extra: string[] = [], env: Record<string, string> = {}) {
    const out = await offline(['audit', 'verify', '--file', path, ...extra, '--json'], env);
    expect(out.code, out.stderr).toBe(3);
    const verdict = JSON.parse(out.stdout);
    expect(verdict.ok).toBe(false);
    return { verdict, stderr: out.stderr };
  }

  async function intact(path: string, extra: string[] = [], env: Record<string, string> = {}) {
    const out = await offline(['audit', 'verify', '--file', path, ...extra, '--json'], env);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    return JSON.parse(out.stdout);
  }

  const masterKeyEnv = () => ({ TOLLGATE_MASTER_KEY_FILE: join(cli.home, 'master.key') });

  beforeAll(async () => {
    cli = await tempHome({ TOLLGATE_AUDIT_WITNESS_PATH: '' });
    dir = cli.env.TOLLGATE_TEST_CWD ?? '';
    cli.env.TOLLGATE_AUDIT_WITNESS_PATH = join(dir, 'witness.jsonl');
    expect((await cli.run(['init'])).code).toBe(0);
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) await cli.run(['team', 'add', name]);
    headFromVerify = (await cli.json<{ head: { seq: number; hash: string } }>(['audit', 'verify'])).head;
    expect((await cli.run(['audit', 'export', '--out', 'audit.jsonl'])).code).toBe(0);
    const lines = (await readFile(join(dir, 'audit.jsonl'), 'utf8')).trimEnd().split('\n');
    proof = JSON.parse(lines[0] ?? '{}');
    rows = lines.slice(1).map((l) => JSON.parse(l) as AuditRow);
  });
  afterAll(() => cli.cleanup());

  it('verifies a clean export from the file alone, and its proof with the master key', async () => {
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(proof).toMatchObject({ format: 'tollgate-audit-export', version: 1, anchor_verified: true });
    expect(proof.anchor).toMatchObject(headFromVerify);
    const path = join(dir, 'audit.jsonl');
    const plain = await intact(path);
    expect(plain).toMatchObject({ ok: true, entries: 7, head: headFromVerify, proof_mac: 'not-checked' });
    const keyed = await intact(path, ['--with-master-key'], masterKeyEnv());
    expect(keyed.proof_mac).toBe('valid');
    const witnessed = await intact(path, ['--witness', 'witness.jsonl']);
    expect(witnessed.expected_heads).toBeGreaterThan(0);
    const head = await intact(path, ['--head', `${headFromVerify.seq}:${headFromVerify.hash}`]);
    expect(head.expected_heads).toBe(1);
    // The human form says what was and was not checked.
    const text = await offline(['audit', 'verify', '--file', path]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/Audit export intact: 7 entries .*head #7 .*proof MAC not checked/);
  });

  it('names an edited entry, a reordered pair, a deleted middle entry and a cut tail', async () => {
    const edited = rows.map((r) => (r.seq === 3 ? { ...r, action: 'team.remove' } : r));
    const e = await broken(await file('edited.jsonl', proof, edited));
    expect(e.verdict.firstBroken).toEqual({ index: 3, seq: 3, reason: 'hash-mismatch', line: 4 });
    expect(e.stderr).toContain('audit export broken at entry #3 (line 4): hash-mismatch');

    const swapped = [...rows];
    [swapped[3], swapped[4]] = [rows[4] as AuditRow, rows[3] as AuditRow];
    const s = await broken(await file('swapped.jsonl', proof, swapped));
    expect(s.verdict.firstBroken).toEqual({ index: 4, seq: 5, reason: 'reordered', line: 5 });

    const deleted = rows.filter((r) => r.seq !== 3);
    const d = await broken(await file('deleted.jsonl', proof, deleted));
    expect(d.verdict.firstBroken).toEqual({ index: 3, seq: 4, reason: 'sequence-gap', line: 4 });

    const cut = rows.slice(0, 5);
    const c = await broken(await file('cut.jsonl', proof, cut));
    expect(c.verdict.firstBroken).toEqual({ index: 6, seq: null, reason: 'missing-tail', line: null });
    expect(c.verdict.entries).toBe(5);
  });

  it('names a garbled line, an entry with a field added, and a file that is not an export', async () => {
    const garbled = [...rows.slice(0, 2), '{"seq": 3, "id": ', ...rows.slice(3)];
    const g = await broken(await file('garbled.jsonl', proof, garbled));
    expect(g.verdict.firstBroken).toEqual({ index: 3, seq: null, reason: 'malformed-line', line: 4 });

    const added = rows.map((r) => (r.seq === 2 ? { ...r, note: 'not hashed' } : r));
    const a = await broken(await file('added.jsonl', proof, added));
    expect(a.verdict.firstBroken).toMatchObject({ index: 2, reason: 'malformed-line', line: 3 });

    const bare = join(dir, 'bare.jsonl');
    await writeFile(bare, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
    const b = await broken(bare);
    expect(b.verdict.firstBroken).toEqual({ index: 1, seq: null, reason: 'proof-missing', line: 1 });
  });

  it('catches a wholesale rewrite: by the proof head, then only by the MAC, the witness or a recorded head', async () => {
    // Entry 2 changed and every later hash recomputed: a self-consistent chain.
    const rewritten = rechain(rows.map((r) => (r.seq === 2 ? { ...r, actor: 'cli:someone-else' } : r)));
    const kept = await broken(await file('rewritten.jsonl', proof, rewritten));
    // The chain is sound up to the head the proof names, whose hash it no longer has.
    expect(kept.verdict.firstBroken).toEqual({ index: 7, seq: 7, reason: 'hash-mismatch', line: 8 });

    // The proof line rewritten to the new head as well: the file alone cannot tell (stated, not hidden)…
    const last = rewritten.at(-1) as AuditRow;
    const forged = { ...proof, anchor: { ...proof.anchor, hash: last.hash } };
    const path = await file('forged.jsonl', forged, rewritten);
    expect((await intact(path)).proof_mac).toBe('not-checked');
    // …the master key can: the proof's MAC no longer matches.
    const mac = await broken(path, ['--with-master-key'], masterKeyEnv());
    expect(mac.verdict.firstBroken).toEqual({ index: 1, seq: null, reason: 'proof-mac-invalid', line: 1 });
    // So can the witness file (its earliest head at or after entry 2 differs) and a head noted earlier.
    const w = await broken(path, ['--witness', 'witness.jsonl']);
    expect(w.verdict.firstBroken).toMatchObject({ reason: 'witness-mismatch' });
    expect(w.verdict.firstBroken.index).toBeGreaterThanOrEqual(2);
    const h = await broken(path, ['--head', `${headFromVerify.seq}:${headFromVerify.hash}`]);
    expect(h.verdict.firstBroken).toEqual({ index: 7, seq: 7, reason: 'witness-mismatch', line: 8 });
  });

  it('catches a cut tail with a rewritten proof only with the master key or a recorded head', async () => {
    const cut = rows.slice(0, 5);
    const newest = cut.at(-1) as AuditRow;
    const forged = { ...proof, anchor: { ...proof.anchor, seq: newest.seq, hash: newest.hash } };
    const path = await file('cut-forged.jsonl', forged, cut);
    expect((await intact(path)).entries).toBe(5);
    const mac = await broken(path, ['--with-master-key'], masterKeyEnv());
    expect(mac.verdict.firstBroken.reason).toBe('proof-mac-invalid');
    const h = await broken(path, ['--head', `${headFromVerify.seq}:${headFromVerify.hash}`]);
    expect(h.verdict.firstBroken).toEqual({ index: 7, seq: null, reason: 'witness-ahead', line: null });
  });

  it('refuses --server and the file options without --file; a wrong master key fails the MAC', async () => {
    const path = join(dir, 'audit.jsonl');
    const remote = await offline(['--server', 'http://127.0.0.1:9', 'audit', 'verify', '--file', path]);
    expect(remote.code).toBe(2);
    expect(remote.stderr).toContain('drop --server');
    const stray = await cli.run(['audit', 'verify', '--witness', 'witness.jsonl']);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toContain('go with --file');
    const badHead = await offline(['audit', 'verify', '--file', path, '--head', '7:nothex']);
    expect(badHead.code).toBe(2);
    const other = await broken(path, ['--with-master-key'], {
      TOLLGATE_MASTER_KEY: Buffer.alloc(32, 9).toString('base64'),
    });
    expect(other.verdict.firstBroken.reason).toBe('proof-mac-invalid');
    // Control: the right key on the same file.
    expect((await intact(path, ['--with-master-key'], masterKeyEnv())).proof_mac).toBe('valid');
  });
});
