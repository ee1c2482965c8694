// Wholesale deletion and replacement of the audit log, through the CLI on real SQLite files:
// an initialised installation must prove its log exists (the anchor is required and bound to the
// installation), and the optional witness file outside the database catches a database rewritten
// from a backup or replaced by another installation's.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { anchorMac } from '../../src/audit/chain.js';
import { deriveKey, parseMasterKey } from '../../src/crypto/master-key.js';
import { type CliHome, tempHome } from '../helpers/cli.js';

/** Copies a closed SQLite database file over another (a restore from a backup, or a swap). */
function copyDatabase(from: string, to: string): void {
  for (const suffix of ['-wal', '-shm']) rmSync(`${to}${suffix}`, { force: true });
  copyFileSync(from, to);
  if (existsSync(`${from}-wal`)) copyFileSync(`${from}-wal`, `${to}-wal`);
}

function withDb<T>(home: string, fn: (db: SQLite.Database) => T): T {
  const db = new SQLite(join(home, 'tollgate.db'));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

async function addTeams(cli: CliHome, ...names: string[]): Promise<void> {
  for (const name of names) expect((await cli.run(['team', 'add', name])).code).toBe(0);
}

describe('audit log deletion is detected without a witness', () => {
  let cli: CliHome;

  beforeEach(async () => {
    cli = await tempHome();
    expect((await cli.run(['init'])).code).toBe(0); // entry 1: install.init
    await addTeams(cli, 'a', 'b');
    expect((await cli.run(['audit', 'verify'])).stdout).toContain('3 entries');
  });
  afterEach(() => cli.cleanup());

  it('every row and the anchor deleted → anchor-missing, and a change refuses to start a fresh log', async () => {
    withDb(cli.home, (db) => {
      db.prepare('delete from audit_log').run();
      db.prepare('delete from audit_anchor').run();
    });
    const verify = await cli.run(['audit', 'verify']);
    expect(verify.code).toBe(3);
    expect(verify.stderr).toMatch(/entry #1 \(anchor-missing\)/);
    // The next audited change does not silently begin a new, clean-looking chain.
    const change = await cli.run(['team', 'add', 'c']);
    expect(change.code).toBe(3);
    expect(withDb(cli.home, (db) => db.prepare('select count(*) as n from audit_log').get())).toEqual({
      n: 0,
    });
    expect((await cli.run(['audit', 'verify'])).code).toBe(3);
  });

  it('rows, anchor and the installation meta rows deleted → nothing verifies, and init refuses to start over', async () => {
    withDb(cli.home, (db) => {
      db.prepare('delete from audit_log').run();
      db.prepare('delete from audit_anchor').run();
      db.prepare('delete from meta').run();
    });
    const verify = await cli.run(['audit', 'verify']);
    expect(verify.code).not.toBe(0);
    expect(verify.stdout).not.toContain('intact');
    // Re-initialising the emptied database from another home (same master key file) would start
    // a fresh, clean log over the old data: refused because Tollgate's tables are already there.
    const other = await tempHome({
      TOLLGATE_DATABASE_URL: `sqlite:${join(cli.home, 'tollgate.db')}`,
      TOLLGATE_MASTER_KEY_FILE: join(cli.home, 'master.key'),
    });
    try {
      const init = await other.run(['init']);
      expect(init.code).toBe(1);
      expect(init.stderr).toMatch(/no installation record/);
    } finally {
      await other.cleanup();
    }
  });

  it("another installation's rows and anchor (same master key) → anchor-mac-invalid", async () => {
    const other = await tempHome({ TOLLGATE_MASTER_KEY_FILE: join(cli.home, 'master.key') });
    try {
      expect((await other.run(['init'])).code).toBe(0);
      await addTeams(other, 'x', 'y', 'z');
      const dbPath = join(other.home, 'tollgate.db');
      withDb(cli.home, (db) => {
        db.prepare('attach database ? as other').run(dbPath);
        db.prepare('delete from audit_log').run();
        db.prepare('delete from audit_anchor').run();
        db.prepare('insert into audit_log select * from other.audit_log').run();
        db.prepare('insert into audit_anchor select * from other.audit_anchor').run();
        db.prepare('detach database other').run();
      });
      // Positive control: the other installation's log verifies in its own database.
      expect((await other.run(['audit', 'verify'])).code).toBe(0);
      const verify = await cli.run(['audit', 'verify']);
      expect(verify.code).toBe(3);
      expect(verify.stderr).toMatch(/anchor-mac-invalid/);
    } finally {
      await other.cleanup();
    }
  });

  it('an anchor in the legacy format (before installation binding) verifies and is upgraded on open', async () => {
    const master = parseMasterKey(readFileSync(join(cli.home, 'master.key'), 'utf8'), 'test');
    const legacyKey = deriveKey(master, 'audit-anchor');
    const legacyMac = withDb(cli.home, (db) => {
      const a = db.prepare('select seq, hash from audit_anchor').get() as { seq: number; hash: string };
      const mac = anchorMac(legacyKey, a.seq, a.hash);
      db.prepare('update audit_anchor set mac = ?').run(mac);
      return mac;
    });
    const verify = await cli.run(['audit', 'verify']);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain('3 entries');
    const upgraded = withDb(cli.home, (db) => db.prepare('select mac from audit_anchor').get()) as {
      mac: string;
    };
    expect(upgraded.mac).not.toBe(legacyMac);
    // The upgraded anchor keeps working: appends extend it and tampering is still caught.
    await addTeams(cli, 'c');
    expect((await cli.run(['audit', 'verify'])).stdout).toContain('4 entries');
    withDb(cli.home, (db) => db.prepare('delete from audit_log where seq = 4').run());
    expect((await cli.run(['audit', 'verify'])).stderr).toMatch(/missing-tail/);
  });

  it('a forged anchor is not laundered by the upgrade on open', async () => {
    withDb(cli.home, (db) => db.prepare('update audit_anchor set mac = ?').run('cd'.repeat(32)));
    expect((await cli.run(['audit', 'verify'])).stderr).toMatch(/anchor-mac-invalid/);
    expect((await cli.run(['audit', 'verify'])).stderr).toMatch(/anchor-mac-invalid/);
  });
});

describe('audit witness file (audit.witness_path)', () => {
  let cli: CliHome;
  let witnessDir: string;
  let witness: string;

  beforeEach(async () => {
    cli = await tempHome();
    witnessDir = join(cli.home, '..', 'witness');
    mkdirSync(witnessDir);
    witness = join(witnessDir, 'audit.witness');
    cli.env.TOLLGATE_AUDIT_WITNESS_PATH = witness;
    expect((await cli.run(['init'])).code).toBe(0);
    await addTeams(cli, 'a', 'b', 'c');
  });
  afterEach(() => cli.cleanup());

  const witnessedSeqs = () =>
    readFileSync(witness, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => (JSON.parse(line) as { seq: number }).seq);

  it('normal operation: each committed head is witnessed and verify agrees', async () => {
    expect(witnessedSeqs()).toEqual([1, 2, 3, 4]);
    const verify = await cli.run(['audit', 'verify']);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain(`4 entries, head #4`);
    expect(verify.stdout).toContain(`witness ${witness} agrees (#4)`);
    // A refused change commits nothing and witnesses nothing.
    expect((await cli.run(['team', 'add', 'a'])).code).not.toBe(0);
    expect(witnessedSeqs()).toEqual([1, 2, 3, 4]);
  });

  it("the database replaced by a fresh installation's (same master key file) → the witness catches it", async () => {
    const other = await tempHome({ TOLLGATE_MASTER_KEY_FILE: join(cli.home, 'master.key') });
    try {
      expect((await other.run(['init'])).code).toBe(0);
      await addTeams(other, 'x', 'y', 'z', 'w');
      copyDatabase(join(other.home, 'tollgate.db'), join(cli.home, 'tollgate.db'));
    } finally {
      await other.cleanup();
    }
    // Rows, anchor and meta all agree with each other: from inside the database it looks clean.
    const blind = await cli.run(['audit', 'verify'], { env: { TOLLGATE_AUDIT_WITNESS_PATH: '' } });
    expect(blind.code).toBe(0);
    const verify = await cli.run(['audit', 'verify']);
    expect(verify.code).toBe(3);
    expect(verify.stderr).toMatch(/witness-mismatch.*database replaced/);
  });

  it('the database restored from an older copy → witness-ahead', async () => {
    const backup = join(cli.home, '..', 'backup.db');
    copyDatabase(join(cli.home, 'tollgate.db'), backup);
    await addTeams(cli, 'd', 'e');
    copyDatabase(backup, join(cli.home, 'tollgate.db'));
    expect((await cli.run(['audit', 'verify'], { env: { TOLLGATE_AUDIT_WITNESS_PATH: '' } })).code).toBe(0);
    const verify = await cli.run(['audit', 'verify']);
    expect(verify.code).toBe(3);
    expect(verify.stderr).toMatch(/witness-ahead.*#6 is past the database's head #4/);
  });

  it('a database rolled back and continued differently (a fork) → witness-mismatch at the witnessed entry', async () => {
    const backup = join(cli.home, '..', 'fork.db');
    copyDatabase(join(cli.home, 'tollgate.db'), backup);
    await addTeams(cli, 'd'); // entry 5, witnessed
    copyDatabase(backup, join(cli.home, 'tollgate.db'));
    // Someone continues the restored copy without the witness: entry 5 again, with another hash.
    const quiet = { env: { TOLLGATE_AUDIT_WITNESS_PATH: '' } };
    expect((await cli.run(['team', 'add', 'other'], quiet)).code).toBe(0);
    expect((await cli.run(['audit', 'verify'], quiet)).code).toBe(0);
    const verify = await cli.run(['audit', 'verify']);
    expect(verify.code).toBe(3);
    expect(verify.stderr).toMatch(/witness-mismatch.*entry #5 differs/);
  });

  it('a witness one behind (crash between commit and witness write) verifies; a torn last line too', async () => {
    const behind = readFileSync(witness, 'utf8');
    await addTeams(cli, 'd'); // entry 5 committed and witnessed…
    writeFileSync(witness, `${behind}{"v":1,"installation":"org_`); // …but the crash lost that line
    const verify = await cli.run(['audit', 'verify']);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain('5 entries');
    expect(verify.stdout).toContain('agrees (#4)');
  });

  it('an unwritable witness never loses a change: the command warns, verify and doctor report it', async () => {
    rmSync(witnessDir, { recursive: true });
    const add = await cli.run(['team', 'add', 'd']);
    expect(add.code).toBe(0);
    expect(add.stderr).toMatch(
      /warning: audit witness .* not written \(ENOENT\); head #5 is only in the database/,
    );
    expect(await cli.json<unknown[]>(['audit', 'list'])).toHaveLength(5);
    const verify = await cli.run(['audit', 'verify']);
    expect(verify.code).toBe(3);
    expect(verify.stderr).toMatch(/witness-missing/);
    const doctor = await cli.run(['doctor']);
    expect(doctor.stdout).toMatch(/✗ audit log\s+witness disagrees \(witness-missing\)/);
    expect(doctor.stdout).toMatch(/✗ witness\s+.* not writable/);
  });

  it('a witness configured later starts with `audit witness`, after the chain verifies', async () => {
    rmSync(witness);
    expect((await cli.run(['audit', 'verify'])).stderr).toMatch(/witness-missing.*tollgate audit witness/);
    const start = await cli.run(['audit', 'witness']);
    expect(start.code).toBe(0);
    expect(start.stdout).toContain('agrees (#4)');
    expect(witnessedSeqs()).toEqual([4]);
    expect((await cli.run(['audit', 'verify'])).code).toBe(0);
    // It refuses to witness a broken chain.
    rmSync(witness);
    withDb(cli.home, (db) => db.prepare(`update audit_log set actor = 'x' where seq = 2`).run());
    expect((await cli.run(['audit', 'witness'])).code).toBe(3);
    expect(existsSync(witness)).toBe(false);
  });
});
