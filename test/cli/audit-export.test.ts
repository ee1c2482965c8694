// `tollgate audit export --out FILE`: a proof line, then every stored row, one per line, from which an outsider can
// recompute the whole chain; a new 0600 file only; a broken log is still exported but exits 3; local only.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { entryHash, GENESIS_HASH } from '../../src/audit/chain.js';
import type { AuditRow } from '../../src/db/schema.js';
import { type CliHome, tempHome } from '../helpers/cli.js';

/** The entries of an export (line 1 is its proof: see audit-verify-file.test.ts). */
async function lines(file: string): Promise<AuditRow[]> {
  const text = await readFile(file, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  const [proof, ...entries] = text.trimEnd().split('\n');
  expect(JSON.parse(proof ?? '{}')).toMatchObject({ format: 'tollgate-audit-export', version: 1 });
  return entries.map((l) => JSON.parse(l) as AuditRow);
}

describe('audit export', () => {
  let cli: CliHome;
  let dir: string;

  beforeEach(async () => {
    cli = await tempHome();
    dir = cli.env.TOLLGATE_TEST_CWD ?? '';
    await cli.run(['init']);
    for (const name of ['a', 'b', 'c', 'd']) await cli.run(['team', 'add', name]);
  });
  afterEach(() => cli.cleanup());

  it('writes every row as stored; the chain recomputes from the file alone', async () => {
    const out = await cli.run(['audit', 'export', '--out', 'audit.jsonl', '--json']);
    expect(out.code, out.stderr).toBe(0);
    const file = join(dir, 'audit.jsonl');
    expect(JSON.parse(out.stdout)).toMatchObject({
      path: file,
      entries: 5,
      verified: { ok: true, entries: 5 },
    });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const rows = await lines(file);
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    let prev = GENESIS_HASH;
    for (const row of rows) {
      expect(row.prev_hash).toBe(prev);
      expect(entryHash(prev, row)).toBe(row.hash);
      prev = row.hash;
    }
    // The file holds what `audit list` shows, entry for entry.
    const listed = await cli.json<Array<{ seq: number; hash: string }>>(['audit', 'list']);
    expect(rows.map((r) => [r.seq, r.hash])).toEqual(listed.map((e) => [e.seq, e.hash]));
  });

  it('never replaces an existing file', async () => {
    const file = join(dir, 'taken.jsonl');
    await writeFile(file, 'earlier export\n');
    const out = await cli.run(['audit', 'export', '--out', file]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/already exists/);
    expect(await readFile(file, 'utf8')).toBe('earlier export\n');
    // Control: a new name works.
    expect((await cli.run(['audit', 'export', '--out', join(dir, 'new.jsonl')])).code).toBe(0);
  });

  it('exports a tampered log all the same, and exits 3 naming the first broken entry', async () => {
    const db = new SQLite(join(cli.home, 'tollgate.db'));
    db.prepare(`update audit_log set action = 'team.remove' where seq = 3`).run();
    db.close();
    const out = await cli.run(['audit', 'export', '--out', 'broken.jsonl']);
    expect(out.code).toBe(3);
    expect(out.stderr).toMatch(/does not verify: broken at entry #3 \(hash-mismatch\)/);
    const rows = await lines(join(dir, 'broken.jsonl'));
    expect(rows).toHaveLength(5);
    expect(rows[2]?.action).toBe('team.remove');
  });

  it('is local only', async () => {
    const out = await cli.run(['--server', 'http://127.0.0.1:9', 'audit', 'export', '--out', 'x.jsonl']);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain('`tollgate audit export` works on the local database only');
  });
});
