import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../db/connect.js';
import { migrateToLatest } from '../db/migrate.js';
import type { AuditRow } from '../db/schema.js';
import { writeTransaction } from '../db/tx.js';
import { AppError } from '../lib/errors.js';
import {
  appendAudit,
  listAudit,
  type NewAuditEntry,
  rekeyAnchor,
  upgradeLegacyAnchor,
} from './audit.repo.js';
import { type AuditService, type AuditVerifyResult, createAuditService } from './audit.service.js';
import { anchorMac, entryHash, GENESIS_HASH, installationAnchorKey } from './chain.js';

const KEY = Buffer.alloc(32, 7);
const pgUrl = process.env.TOLLGATE_TEST_DATABASE_URL;

interface Harness {
  db: Db;
  /** Another handle on the same database (a CLI next to a running server). */
  openSecond(): Db;
  close(): Promise<void>;
}

async function sqliteHarness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-audit-'));
  const path = join(dir, 'tollgate.db');
  const db = openDatabase({ kind: 'sqlite', path });
  await migrateToLatest(db);
  return {
    db,
    openSecond: () => openDatabase({ kind: 'sqlite', path }),
    close: async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresHarness(baseUrl: string): Promise<Harness> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = openDatabase({ kind: 'postgres', url: baseUrl });
  await sql.raw(`create schema ${schema}`).execute(admin.kysely);
  const url = `${baseUrl}${baseUrl.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const db = openDatabase({ kind: 'postgres', url });
  await migrateToLatest(db);
  return {
    db,
    openSecond: () => openDatabase({ kind: 'postgres', url }),
    close: async () => {
      await db.close();
      await sql.raw(`drop schema ${schema} cascade`).execute(admin.kysely);
      await admin.close();
    },
  };
}

function entry(n: number): NewAuditEntry {
  return {
    actor: 'usr_admin',
    action: 'key.issue',
    targetType: 'key',
    targetId: `key_${n}`,
    details: { n, name: `k${n}` },
    at: 1_700_000_000_000 + n,
  };
}

/** Appends entries 1..n; entry 1 is the genesis append `init` makes (allowed only without an anchor). */
async function appendN(h: Harness, audit: AuditService, n: number): Promise<void> {
  await writeTransaction(h.db, (tx) => appendAudit(tx, h.db.dialect, KEY, entry(1), { genesis: true }));
  for (let i = 2; i <= n; i++) await writeTransaction(h.db, (tx) => audit.record(tx, entry(i)));
}

async function allRows(db: Db): Promise<AuditRow[]> {
  return db.kysely.selectFrom('audit_log').selectAll().orderBy('seq').execute();
}

async function noBusyWait(db: Db): Promise<void> {
  if (db.dialect === 'sqlite') await sql`pragma busy_timeout = 0`.execute(db.kysely);
}

/** Retries an operation refused with SQLITE_BUSY (another handle holds the write lock) after a short async pause. */
async function retryWhileBusy<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      const busy =
        typeof error === 'object' && error !== null && 'code' in error && error.code === 'SQLITE_BUSY';
      if (!busy || attempt > 2000) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 4));
    }
  }
}

function brokenAt(result: AuditVerifyResult) {
  if (result.ok) throw new Error('expected the chain to be broken');
  return result.firstBroken;
}

async function appendRefusal(h: Harness, audit: AuditService): Promise<AppError> {
  try {
    await writeTransaction(h.db, (tx) => audit.record(tx, entry(99)));
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected the append to be refused');
}

function auditSuite(open: () => Promise<Harness>) {
  let h: Harness;
  let audit: AuditService;

  beforeEach(async () => {
    h = await open();
    audit = createAuditService({ db: h.db, anchorKey: KEY });
  });
  afterEach(async () => {
    await h.close();
  });

  it('appends a contiguous chain that verifies and lists', async () => {
    await appendN(h, audit, 10);
    const rows = await allRows(h.db);
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(rows[0]?.prev_hash).toBe(GENESIS_HASH);
    expect(rows[0]?.id).toMatch(/^aud_/);
    expect(await audit.verify()).toEqual({
      ok: true,
      entries: 10,
      head: { seq: 10, hash: rows[9]?.hash },
      witness: null,
    });

    const listed = await audit.list({ afterSeq: 3, limit: 2 });
    expect(listed.map((e) => e.seq)).toEqual([4, 5]);
    expect(listed[0]).toMatchObject({
      actor: 'usr_admin',
      targetType: 'key',
      targetId: 'key_4',
      details: { n: 4, name: 'k4' },
    });
    expect((await listAudit(h.db.kysely, { since: 1_700_000_000_008 })).map((r) => r.seq)).toEqual([
      8, 9, 10,
    ]);
    // The API's filters: a time window (until exclusive) and exact actor, action and target.
    const seqs = async (opts: Parameters<typeof listAudit>[1]) =>
      (await listAudit(h.db.kysely, opts)).map((r) => r.seq);
    expect(await seqs({ since: 1_700_000_000_003, until: 1_700_000_000_005 })).toEqual([3, 4]);
    expect(await seqs({ targetId: 'key_7' })).toEqual([7]);
    expect(await seqs({ targetType: 'key', afterSeq: 8 })).toEqual([9, 10]);
    expect(await seqs({ actor: 'usr_admin', action: 'key.issue', limit: 3 })).toEqual([1, 2, 3]);
    expect(await seqs({ actor: 'usr_other' })).toEqual([]);
    expect(await seqs({ action: 'key' })).toEqual([]);
  });

  it('rolls the entry back with the transaction, and refuses secrets in details', async () => {
    await appendN(h, audit, 2);
    await expect(
      writeTransaction(h.db, async (tx) => {
        await audit.record(tx, entry(3));
        throw new Error('domain change failed');
      }),
    ).rejects.toThrow('domain change failed');
    const secret = `sk-ant-api03-${'s'.repeat(40)}`;
    await expect(
      writeTransaction(h.db, (tx) => audit.record(tx, { ...entry(3), details: { key: secret } })),
    ).rejects.toMatchObject({ code: 'internal' });
    expect(await audit.verify()).toMatchObject({ ok: true, entries: 2 });
    const dump = JSON.stringify(await allRows(h.db));
    expect(dump).not.toContain(secret);
  });

  it('edited middle row → hash-mismatch at it', async () => {
    await appendN(h, audit, 10);
    await sql`update audit_log set action = 'key.unrevoke' where seq = 5`.execute(h.db.kysely);
    expect(await audit.verify()).toEqual({
      ok: false,
      entries: 4,
      firstBroken: { index: 5, seq: 5, reason: 'hash-mismatch' },
    });
  });

  it('deleted middle row → sequence-gap at it', async () => {
    await appendN(h, audit, 10);
    await sql`delete from audit_log where seq = 5`.execute(h.db.kysely);
    expect(brokenAt(await audit.verify())).toEqual({ index: 5, seq: 6, reason: 'sequence-gap' });
    // A later append trusts the anchor, so the gap stays visible.
    await writeTransaction(h.db, (tx) => audit.record(tx, entry(11)));
    expect(brokenAt(await audit.verify())).toEqual({ index: 5, seq: 6, reason: 'sequence-gap' });
  });

  it('deleted newest rows → missing-tail after the last remaining row', async () => {
    await appendN(h, audit, 10);
    await sql`delete from audit_log where seq > 8`.execute(h.db.kysely);
    expect(await audit.verify()).toEqual({
      ok: false,
      entries: 8,
      firstBroken: { index: 9, seq: null, reason: 'missing-tail' },
    });
  });

  it('two rows swapped → reordered at the first of them', async () => {
    await appendN(h, audit, 10);
    await sql`update audit_log set seq = -3 where seq = 3`.execute(h.db.kysely);
    await sql`update audit_log set seq = 3 where seq = 7`.execute(h.db.kysely);
    await sql`update audit_log set seq = 7 where seq = -3`.execute(h.db.kysely);
    expect(brokenAt(await audit.verify())).toEqual({ index: 3, seq: 3, reason: 'reordered' });
  });

  it('whole table rewritten as a valid chain without the key → hash-mismatch at the anchored head', async () => {
    await appendN(h, audit, 10);
    let prev = GENESIS_HASH;
    const forged: AuditRow[] = [];
    for (const row of await allRows(h.db)) {
      const fields = { ...row, actor: 'usr_mallory' };
      const hash = entryHash(prev, fields);
      forged.push({ ...fields, prev_hash: prev, hash });
      prev = hash;
    }
    await sql`delete from audit_log`.execute(h.db.kysely);
    await h.db.kysely.insertInto('audit_log').values(forged).execute();
    expect(brokenAt(await audit.verify())).toEqual({ index: 10, seq: 10, reason: 'hash-mismatch' });
  });

  it('deleted anchor → anchor-missing, and appends refuse to start a new chain', async () => {
    await appendN(h, audit, 3);
    await sql`delete from audit_anchor`.execute(h.db.kysely);
    expect(await audit.verify()).toEqual({
      ok: false,
      entries: 0,
      firstBroken: { index: 1, seq: 1, reason: 'anchor-missing' },
    });
    expect((await appendRefusal(h, audit)).code).toBe('audit_broken');
  });

  it('every row and the anchor deleted → anchor-missing, and no append but the genesis one of init restarts the log', async () => {
    await appendN(h, audit, 3);
    await sql`delete from audit_log`.execute(h.db.kysely);
    await sql`delete from audit_anchor`.execute(h.db.kysely);
    // An empty log without an anchor is what a wholesale deletion leaves: never "clean, 0 entries".
    expect(await audit.verify()).toEqual({
      ok: false,
      entries: 0,
      firstBroken: { index: 1, seq: null, reason: 'anchor-missing' },
    });
    expect((await appendRefusal(h, audit)).code).toBe('audit_broken');
    expect(await allRows(h.db)).toEqual([]);
    // Positive control: the genesis append of `init` is the one allowed to start a chain.
    await writeTransaction(h.db, (tx) => appendAudit(tx, h.db.dialect, KEY, entry(1), { genesis: true }));
    expect(await audit.verify()).toMatchObject({ ok: true, entries: 1 });
  });

  it('a legacy anchor (bare master-derived key) is upgraded to the installation key; a forged one is not', async () => {
    await appendN(h, audit, 3);
    const installationKey = installationAnchorKey(KEY, 'org_test', Buffer.alloc(32, 5));
    const bound = createAuditService({ db: h.db, anchorKey: installationKey });
    expect(brokenAt(await bound.verify()).reason).toBe('anchor-mac-invalid');
    expect(
      await writeTransaction(h.db, (tx) => upgradeLegacyAnchor(tx, h.db.dialect, KEY, installationKey)),
    ).toBe(true);
    expect(await bound.verify()).toMatchObject({ ok: true, entries: 3 });
    expect(brokenAt(await audit.verify()).reason).toBe('anchor-mac-invalid'); // no longer the legacy format
    // Already upgraded: nothing to do (a second process opening at the same time).
    expect(
      await writeTransaction(h.db, (tx) => upgradeLegacyAnchor(tx, h.db.dialect, KEY, installationKey)),
    ).toBe(false);
    // A forged anchor (neither key) stays broken rather than being laundered.
    await sql`update audit_anchor set mac = ${'ab'.repeat(32)}`.execute(h.db.kysely);
    expect(
      await writeTransaction(h.db, (tx) => upgradeLegacyAnchor(tx, h.db.dialect, KEY, installationKey)),
    ).toBe(false);
    expect(brokenAt(await bound.verify()).reason).toBe('anchor-mac-invalid');
  });

  it('forged anchor over a truncated log → anchor-mac-invalid, and appends refuse to launder it', async () => {
    await appendN(h, audit, 10);
    const eighth = (await allRows(h.db))[7];
    if (!eighth) throw new Error('no row 8');
    await sql`delete from audit_log where seq > 8`.execute(h.db.kysely);
    const mac = anchorMac(Buffer.alloc(32, 9), 8, eighth.hash);
    await sql`update audit_anchor set seq = 8, hash = ${eighth.hash}, mac = ${mac}`.execute(h.db.kysely);
    expect(brokenAt(await audit.verify())).toEqual({ index: 1, seq: null, reason: 'anchor-mac-invalid' });
    expect((await appendRefusal(h, audit)).code).toBe('audit_broken');
    expect(brokenAt(await audit.verify()).reason).toBe('anchor-mac-invalid');
  });

  it('rows appended without the key → extra-entries after the anchored head', async () => {
    await appendN(h, audit, 10);
    const tenth = (await allRows(h.db))[9];
    if (!tenth) throw new Error('no row 10');
    const fields = { ...tenth, seq: 11, id: 'aud_extra', action: 'key.issue' };
    await h.db.kysely
      .insertInto('audit_log')
      .values({ ...fields, prev_hash: tenth.hash, hash: entryHash(tenth.hash, fields) })
      .execute();
    expect(await audit.verify()).toEqual({
      ok: false,
      entries: 10,
      firstBroken: { index: 11, seq: 11, reason: 'extra-entries' },
    });
    expect((await appendRefusal(h, audit)).code).toBe('audit_broken');
  });

  it('re-keys the anchor for a master-key rotation, only from a valid anchor', async () => {
    await appendN(h, audit, 3);
    const newKey = Buffer.alloc(32, 8);
    await writeTransaction(h.db, (tx) => rekeyAnchor(tx, h.db.dialect, KEY, newKey));
    expect(brokenAt(await audit.verify()).reason).toBe('anchor-mac-invalid');
    const rotated = createAuditService({ db: h.db, anchorKey: newKey });
    expect(await rotated.verify()).toMatchObject({ ok: true, entries: 3 });
    await expect(
      writeTransaction(h.db, (tx) => rekeyAnchor(tx, h.db.dialect, KEY, newKey)),
    ).rejects.toMatchObject({
      code: 'audit_broken',
    });
  });

  it('49 concurrent appends after the first form one contiguous chain', async () => {
    await appendN(h, audit, 1);
    await Promise.all(
      Array.from({ length: 49 }, (_, i) =>
        writeTransaction(h.db, (tx) => appendAudit(tx, h.db.dialect, KEY, entry(i + 2))),
      ),
    );
    expect((await allRows(h.db)).map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(await audit.verify()).toMatchObject({ ok: true, entries: 50 });
  });

  it('concurrent appends from two handles (CLI next to a server) and a concurrent verify stay consistent', async () => {
    const second = h.openSecond();
    try {
      // Both handles live in this one process, where SQLite's busy handler would block the very event
      // loop that must finish the other handle's transaction; waiting is therefore done here, async.
      await noBusyWait(h.db);
      await noBusyWait(second);
      const other = createAuditService({ db: second, anchorKey: KEY });
      await appendN(h, audit, 1);
      const appends = Array.from({ length: 49 }, (_, i) =>
        i % 2 === 0
          ? retryWhileBusy(() => writeTransaction(h.db, (tx) => audit.record(tx, entry(i))))
          : retryWhileBusy(() => writeTransaction(second, (tx) => other.record(tx, entry(i)))),
      );
      const verdicts = await Promise.all([
        audit.verify(),
        ...appends.slice(0, 25),
        other.verify(),
        ...appends.slice(25),
      ]);
      // A verify that overlaps appends sees one consistent snapshot: never extra entries or a missing tail.
      expect(verdicts[0]).toMatchObject({ ok: true });
      expect(verdicts[26]).toMatchObject({ ok: true });
    } finally {
      await second.close();
    }
    expect((await allRows(h.db)).map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(await audit.verify()).toMatchObject({ ok: true, entries: 50, head: { seq: 50 } });
  });

  it('verifies page by page across batch boundaries', async () => {
    const n = 12_345;
    const rows: AuditRow[] = [];
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= n; seq++) {
      const fields = {
        seq,
        id: `aud_${seq}`,
        at: seq,
        actor: 'system',
        action: 'bulk',
        target_type: null,
        target_id: null,
        details: '{}',
      };
      const hash = entryHash(prev, fields);
      rows.push({ ...fields, prev_hash: prev, hash });
      prev = hash;
    }
    await writeTransaction(h.db, async (tx) => {
      for (let i = 0; i < rows.length; i += 500)
        await tx
          .insertInto('audit_log')
          .values(rows.slice(i, i + 500))
          .execute();
      await tx
        .insertInto('audit_anchor')
        .values({ id: 1, seq: n, hash: prev, mac: anchorMac(KEY, n, prev) })
        .execute();
    });
    expect(await audit.verify()).toEqual({
      ok: true,
      entries: n,
      head: { seq: n, hash: prev },
      witness: null,
    });
    const small = createAuditService({ db: h.db, anchorKey: KEY, batchSize: 7 });
    await sql`update audit_log set actor = 'x' where seq = 5001`.execute(h.db.kysely);
    expect(brokenAt(await audit.verify())).toEqual({ index: 5001, seq: 5001, reason: 'hash-mismatch' });
    expect(brokenAt(await small.verify())).toEqual({ index: 5001, seq: 5001, reason: 'hash-mismatch' });
  });
}

describe('audit log on SQLite', () => {
  auditSuite(sqliteHarness);

  it('verifies an in-memory database on its own connection', async () => {
    const db = openDatabase({ kind: 'sqlite', path: ':memory:' });
    try {
      await migrateToLatest(db);
      const audit = createAuditService({ db, anchorKey: KEY });
      await writeTransaction(db, (tx) => appendAudit(tx, db.dialect, KEY, entry(1), { genesis: true }));
      for (let i = 2; i <= 3; i++) await writeTransaction(db, (tx) => audit.record(tx, entry(i)));
      expect(await audit.verify()).toMatchObject({ ok: true, entries: 3 });
    } finally {
      await db.close();
    }
  });
});

describe.skipIf(!pgUrl)('audit log on PostgreSQL', () => {
  auditSuite(() => postgresHarness(pgUrl ?? ''));
});
