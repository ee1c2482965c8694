// CI smoke test: proves the test runner runs on the Node.js that CI meant it to, and that the
// better-sqlite3 native module was built for that Node (it fails to load when built for another ABI).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

describe('ci smoke', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-ci-smoke-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports the Node.js version it runs on', () => {
    const { node, modules } = process.versions;
    console.log(`ci-smoke: node ${node} (ABI ${modules}) at ${process.execPath}`);
    const major = Number(node.split('.')[0]);
    expect(major).toBeGreaterThanOrEqual(20);
    // .ci/run sets this to the major it is testing, so a run that silently fell back to
    // another Node (e.g. the machine's /usr/bin/node) fails here.
    const expected = process.env.TOLLGATE_CI_NODE_MAJOR;
    if (expected) expect(major).toBe(Number(expected));
  });

  it('loads better-sqlite3 and queries an in-memory database', () => {
    const db = new Database(':memory:');
    try {
      const row = db.prepare('select sqlite_version() as version, 6 * 7 as answer').get() as {
        version: string;
        answer: number;
      };
      console.log(`ci-smoke: sqlite ${row.version}`);
      expect(row.answer).toBe(42);
      expect(row.version).toMatch(/^3\.\d+\.\d+$/);
    } finally {
      db.close();
    }
  });

  it('sets journal_mode to WAL on a temp-file database', () => {
    const file = join(dir, 'smoke.db');
    const db = new Database(file);
    try {
      expect(db.pragma('journal_mode = WAL', { simple: true })).toBe('wal');
      db.exec('create table t (x integer not null)');
      db.prepare('insert into t (x) values (?)').run(7);
      expect(db.prepare('select sum(x) from t').pluck().get()).toBe(7);
    } finally {
      db.close();
    }
    // WAL is persistent: a new connection to the same file still sees it.
    const again = new Database(file, { readonly: true });
    try {
      expect(again.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      again.close();
    }
  });
});
