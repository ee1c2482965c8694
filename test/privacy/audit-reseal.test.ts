// The one-time reseal epoch (src/audit/reseal.ts) on a log written before personal fields were sealed:
// after the installation is opened again, `audit verify` and an export's offline check pass, the stored
// rows no longer hold the names, IPs or name-bearing actors in the clear (while they did before), the
// listing still shows them, an `audit.reseal` entry names the old head, and an edit is still caught. A
// log that does not verify is left exactly as it was (control), and a second open reseals nothing.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { appendAudit, headOf } from '../../src/audit/audit.repo.js';
import { exportAudit } from '../../src/audit/audit-export.js';
import { exportLines } from '../../src/audit/export-lines.js';
import { exportProofKey } from '../../src/audit/export-proof.js';
import { verifyExport } from '../../src/audit/export-verify.js';
import { SEALED_META_KEY } from '../../src/audit/reseal.js';
import { readWitness } from '../../src/audit/witness.js';
import { type Config, loadConfig } from '../../src/config/load.js';
import { openDatabase } from '../../src/db/connect.js';
import { writeTransaction } from '../../src/db/tx.js';
import { type Installation, initInstallation, openInstallation } from '../../src/install/installation.js';
import { createServices } from '../../src/services.js';
import { createPgSchema, PG_URL } from '../helpers/pg.js';
import { columnsHolding } from './db-scan.js';

const LEGACY_NAME = 'bea-legacy';
const LEGACY_ADMIN = 'ada-legacy';
const LEGACY_IP = '198.51.100.23';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Target = { name: string; env: () => Promise<Record<string, string>> };
const targets: Target[] = [{ name: 'sqlite', env: async () => ({}) }];
const pgUrl = PG_URL;
if (pgUrl)
  targets.push({
    name: 'postgres',
    env: async () => {
      const schema = await createPgSchema(pgUrl);
      cleanups.push(schema.drop);
      return { TOLLGATE_DATABASE_URL: schema.url };
    },
  });

/** An installation whose log holds entries in the format before 0022 (plaintext names, IP, actor). */
async function legacyInstallation(
  env: Record<string, string>,
  witness = false,
): Promise<{ config: Config; ids: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-reseal-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const config = await loadConfig({
    env: {
      TOLLGATE_HOME: join(dir, 'home'),
      ...(witness ? { TOLLGATE_AUDIT_WITNESS_PATH: join(dir, 'witness.log') } : {}),
      ...env,
    },
    cwd: dir,
  });
  const { installation } = await initInstallation(config, Date.now, 'test');
  try {
    const services = createServices(installation, config, Date.now);
    const by = { actor: 'cli:test' };
    const ada = await services.users.add(by, { name: LEGACY_ADMIN, role: 'admin' });
    const bea = await services.users.add(by, { name: LEGACY_NAME });
    const { db, anchorKey } = installation;
    const last = await writeTransaction(db, async (tx) => {
      await tx.deleteFrom('meta').where('key', '=', SEALED_META_KEY).execute();
      // What the code before 0022 wrote: no master key given, so nothing is sealed or mapped.
      const at = Date.now();
      await appendAudit(tx, db.dialect, anchorKey, {
        actor: `admin:${LEGACY_ADMIN}`,
        action: 'user.add',
        targetType: 'user',
        targetId: bea.id,
        details: { name: LEGACY_NAME, role: 'member' },
        at,
      });
      await appendAudit(tx, db.dialect, anchorKey, {
        actor: `user:${LEGACY_NAME}`,
        action: 'session.open',
        targetType: 'session',
        targetId: 'ses_legacy',
        details: { method: 'password', user_id: bea.id, ip: LEGACY_IP },
        at,
      });
      return appendAudit(tx, db.dialect, anchorKey, {
        actor: 'cli:test',
        action: 'team.add',
        targetType: 'team',
        targetId: 'team_x',
        details: { name: 'not-personal' },
        at,
      });
    });
    await installation.witness?.record(headOf(last, anchorKey));
    return { config, ids: [ada.id, bea.id] };
  } finally {
    await installation.close();
  }
}

async function opened(config: Config): Promise<Installation> {
  const installation = await openInstallation(config);
  cleanups.push(() => installation.close());
  return installation;
}

describe.each(targets)('audit reseal epoch on $name', (target) => {
  it('reseals a legacy log: verify passes, no plaintext left, listing shows it, edits caught', async () => {
    const { config: config2, ids } = await legacyInstallation(await target.env());
    const [, beaId] = ids;
    // Before: the legacy rows hold the personal data in the clear.
    const raw = openDatabase(config2.database);
    try {
      expect(await columnsHolding(raw, LEGACY_NAME)).toContain('audit_log.details');
      expect(await columnsHolding(raw, LEGACY_ADMIN)).toContain('audit_log.actor');
      expect(await columnsHolding(raw, LEGACY_IP)).toContain('audit_log.details');
    } finally {
      await raw.close();
    }

    const installation = await opened(config2);
    const services = createServices(installation, config2, Date.now);
    const verdict = await services.audit.verify();
    expect(verdict).toMatchObject({ ok: true });
    const db = installation.db;
    expect(await columnsHolding(db, LEGACY_NAME)).toEqual(['users.name']);
    expect(await columnsHolding(db, LEGACY_ADMIN)).toEqual(['users.name']);
    expect(await columnsHolding(db, LEGACY_IP)).toEqual([]);

    // The listing opens the sealed fields and shows people by name.
    const adds = await services.audit.list({ action: 'user.add' });
    expect(adds.map((e) => e.details.name)).toContain(LEGACY_NAME);
    const sessions = await services.audit.list({ action: 'session.open' });
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ actor: `user:${LEGACY_NAME}`, details: { ip: LEGACY_IP } });
    expect(await services.audit.list({ actor: `admin:${LEGACY_ADMIN}` })).toHaveLength(1);
    const team = await services.audit.list({ action: 'team.add', targetId: 'team_x' });
    expect(team[0]?.details).toEqual({ name: 'not-personal' });

    // The epoch names the old head it re-chained from.
    const epoch = await services.audit.list({ action: 'audit.reseal' });
    expect(epoch).toHaveLength(1);
    expect(epoch[0]?.details).toMatchObject({ resealed_entries: expect.any(Number) });
    expect(Number(epoch[0]?.details.previous_head_seq)).toBe((epoch[0]?.seq ?? 0) - 1);
    expect(epoch[0]?.details.previous_head_hash).toMatch(/^[0-9a-f]{64}$/);

    // An export of the resealed log verifies offline.
    const path = join(config2.home, 'audit.jsonl');
    await exportAudit(
      {
        db,
        orgId: installation.orgId,
        anchorKey: installation.anchorKey,
        proofKey: exportProofKey(installation.master),
      },
      path,
      Date.now(),
    );
    expect(
      await verifyExport(exportLines(path), { proofKey: exportProofKey(installation.master) }),
    ).toMatchObject({ ok: true });

    // A purge after the epoch: the legacy fields read [purged], the chain still verifies.
    await services.userPurge.purge({ actor: 'cli:test' }, beaId ?? '');
    const purged = await services.audit.list({ action: 'session.open' });
    expect(purged[0]?.details.ip).toBe('[purged]');
    expect(await services.audit.verify()).toMatchObject({ ok: true });

    // Tamper control: an edited resealed row is still caught.
    const row = await db.kysely
      .selectFrom('audit_log')
      .select(['seq'])
      .where('action', '=', 'session.open')
      .executeTakeFirstOrThrow();
    await db.kysely
      .updateTable('audit_log')
      .set({ actor: 'user:someone' })
      .where('seq', '=', row.seq)
      .execute();
    expect(await services.audit.verify()).toMatchObject({
      ok: false,
      firstBroken: { seq: row.seq, reason: 'hash-mismatch' },
    });
  });

  it('leaves a log that does not verify as it is, and a second open reseals nothing', async () => {
    const { config } = await legacyInstallation(await target.env());
    const raw = openDatabase(config.database);
    const edited = await raw.kysely
      .selectFrom('audit_log')
      .select(['seq', 'details'])
      .where('action', '=', 'team.add')
      .executeTakeFirstOrThrow();
    await raw.kysely
      .updateTable('audit_log')
      .set({ details: '{"name":"edited"}' })
      .where('seq', '=', edited.seq)
      .execute();
    const snapshot = await raw.kysely.selectFrom('audit_log').selectAll().orderBy('seq').execute();
    await raw.close();

    const broken = await opened(config);
    expect(await broken.db.kysely.selectFrom('audit_log').selectAll().orderBy('seq').execute()).toEqual(
      snapshot,
    );
    const services = createServices(broken, config, Date.now);
    expect(await services.audit.verify()).toMatchObject({ ok: false, firstBroken: { seq: edited.seq } });

    // Control: the same log repaired is resealed at the next open, once.
    await broken.db.kysely
      .updateTable('audit_log')
      .set({ details: edited.details })
      .where('seq', '=', edited.seq)
      .execute();
    await broken.close();
    cleanups.pop();
    for (let i = 0; i < 2; i++) {
      const again = await opened(config);
      const s = createServices(again, config, Date.now);
      expect(await s.audit.verify()).toMatchObject({ ok: true });
      expect(await s.audit.list({ action: 'audit.reseal' })).toHaveLength(1);
      await again.close();
      cleanups.pop();
    }
  });

  it('a witness kept before the epoch still verifies after it, and still catches a rewrite', async () => {
    const { config } = await legacyInstallation(await target.env(), true);
    const installation = await opened(config);
    const services = createServices(installation, config, Date.now);
    const verdict = await services.audit.verify();
    expect(verdict).toMatchObject({ ok: true, witness: { seq: expect.any(Number) } });
    // The same offline: an export checked against the witness file's heads (`verify --file --witness`).
    const read = await readWitness(config.audit.witness_path ?? '');
    if (read.kind !== 'ok') throw new Error('witness unreadable');
    expect(read.heads.length).toBeGreaterThan(1);
    const path = join(config.home, 'audit-witnessed.jsonl');
    await exportAudit(
      {
        db: installation.db,
        orgId: installation.orgId,
        anchorKey: installation.anchorKey,
        proofKey: exportProofKey(installation.master),
      },
      path,
      Date.now(),
    );
    const expected = read.heads.map((h) => ({ ...h, source: 'witness' }));
    expect(await verifyExport(exportLines(path), { expected })).toMatchObject({ ok: true });
    // Control: a witnessed head the epoch did not re-hash is still checked against its entry.
    const first = await installation.db.kysely
      .selectFrom('audit_log')
      .select(['seq', 'details'])
      .where('seq', '=', 1)
      .executeTakeFirstOrThrow();
    await installation.db.kysely
      .updateTable('audit_log')
      .set({ details: '{"x":1}' })
      .where('seq', '=', 1)
      .execute();
    expect(await services.audit.verify()).toMatchObject({ ok: false });
    await installation.db.kysely
      .updateTable('audit_log')
      .set({ details: first.details })
      .where('seq', '=', 1)
      .execute();
    expect(await services.audit.verify()).toMatchObject({ ok: true });
  });
});
