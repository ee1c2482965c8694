// `tollgate audit verify` names the first broken entry for each kind of tampering and exits non-zero.
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { entryHash, GENESIS_HASH } from '../../src/audit/chain.js';
import type { AuditRow } from '../../src/db/schema.js';
import { type CliHome, tempHome } from '../helpers/cli.js';

describe('audit verify after tampering', () => {
  let cli: CliHome;
  let db: SQLite.Database;

  beforeEach(async () => {
    cli = await tempHome();
    await cli.run(['init']); // entry 1
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) await cli.run(['team', 'add', name]); // entries 2..7
    const ok = await cli.run(['audit', 'verify']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('7 entries');
    db = new SQLite(join(cli.home, 'tollgate.db'));
  });

  afterEach(async () => {
    db.close();
    await cli.cleanup();
  });

  async function verify() {
    const result = await cli.run(['audit', 'verify']);
    expect(result.code).toBe(3);
    return result.stderr;
  }

  it('reports an edited entry at its index', async () => {
    db.prepare(`update audit_log set action = 'team.remove' where seq = 4`).run();
    expect(await verify()).toMatch(/entry #4 \(hash-mismatch\)/);
  });

  it('reports an edited detail of the first entry', async () => {
    db.prepare(`update audit_log set actor = 'someone-else' where seq = 1`).run();
    expect(await verify()).toMatch(/entry #1 /);
  });

  it('reports a deleted middle entry', async () => {
    db.prepare('delete from audit_log where seq = 3').run();
    expect(await verify()).toMatch(/entry #3 \(sequence-gap\)/);
  });

  it('reports deleted newest entries', async () => {
    db.prepare('delete from audit_log where seq >= 6').run();
    expect(await verify()).toMatch(/entry #6 \(missing-tail\)/);
  });

  it('reports reordered entries', async () => {
    // Swap the contents of entries 4 and 5 while keeping the seq column in order.
    const rows = db.prepare('select * from audit_log where seq in (4, 5) order by seq').all() as Array<
      Record<string, unknown>
    >;
    const [r4, r5] = rows;
    if (!r4 || !r5) throw new Error('missing rows');
    db.prepare('delete from audit_log where seq in (4, 5)').run();
    const insert = db.prepare(
      'insert into audit_log (seq, id, at, actor, action, target_type, target_id, details, prev_hash, hash) values (@seq, @id, @at, @actor, @action, @target_type, @target_id, @details, @prev_hash, @hash)',
    );
    insert.run({ ...r5, seq: 4 });
    insert.run({ ...r4, seq: 5 });
    expect(await verify()).toMatch(/entry #4 /);
  });

  it('reports a wholesale rewrite with a recomputed chain against the anchor', async () => {
    // The attacker rewrites entry 3 and re-links every later entry, so the chain itself is consistent.
    const rows = db.prepare('select * from audit_log order by seq').all() as AuditRow[];
    let prev = GENESIS_HASH;
    const update = db.prepare(
      'update audit_log set action = @action, prev_hash = @prev_hash, hash = @hash where seq = @seq',
    );
    for (const row of rows) {
      const action = row.seq === 3 ? 'team.remove' : row.action;
      const hash = entryHash(prev, { ...row, action });
      update.run({ seq: row.seq, action, prev_hash: prev, hash });
      prev = hash;
    }
    // Only the anchor, MAC'd under a key derived from the master key, still names the true head.
    expect(await verify()).toMatch(/entry #7 \(hash-mismatch\)/);
  });

  it('reports a deleted anchor', async () => {
    db.prepare('delete from audit_anchor').run();
    expect(await verify()).toMatch(/anchor-missing/);
  });
});
