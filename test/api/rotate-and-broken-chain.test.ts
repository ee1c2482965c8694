// The installation token rotates on the local database only and stops the old one at once; a broken
// audit chain is an answer over the API (200, ok: false) and the CLI exits 3 with the same message
// locally and with --server. Each on its own installation: both leave it changed for good.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Harness } from '../helpers/gateway.js';
import { findLeaks } from '../helpers/secrets.js';
import { local, remote, startApiHarness, whoami } from './cli-modes.js';

describe('rotating the installation token, and a broken chain, locally and remotely', () => {
  let h: Harness;
  /** The installation token after the rotations (the harness's api() would send the first one). */
  let current = '';
  beforeAll(async () => {
    h = await startApiHarness();
    await h.services.teams.add(h.admin, { name: 'a' });
    await h.services.teams.add(h.admin, { name: 'b' });
  });
  afterAll(() => h.close());

  it('`admin-token rotate`: the old installation token gets 401 at once, the new one 200', async () => {
    const old = h.adminToken;
    expect((await whoami(h, old)).status).toBe(200);
    const rotated = await local(h, ['admin-token', 'rotate', '--json']);
    expect(rotated.code).toBe(0);
    const { admin_token: fresh } = JSON.parse(rotated.stdout) as { admin_token: string };
    expect(Object.keys(JSON.parse(rotated.stdout))).toEqual(['admin_token']);
    expect(fresh).toMatch(/^tga_/);
    expect(fresh).not.toBe(old);
    expect((await whoami(h, old)).status).toBe(401);
    const me = await whoami(h, fresh);
    expect(me.status).toBe(200);
    expect(me.json.kind).toBe('installation');

    const entry = await h.api('GET', '/admin/v1/audit?action=admin_token.rotate', { token: fresh });
    expect(entry.json.items).toHaveLength(1);
    expect(entry.json.items[0].details).toEqual({ hint: `tga_…${fresh.slice(-4)}`, ended_sessions: 0 });
    const rows = await h.installation.db.kysely.selectFrom('audit_log').selectAll().execute();
    expect(findLeaks(JSON.stringify(rows), [old, fresh])).toEqual([]);

    // The human output prints the new token once.
    const again = await local(h, ['admin-token', 'rotate']);
    expect(again.code).toBe(0);
    const newest = /\b(tga_[A-Za-z0-9]{49})\b/.exec(again.stdout)?.[1] ?? '';
    expect(again.stdout.split(newest).length - 1).toBe(1);
    expect((await whoami(h, fresh)).status).toBe(401);
    expect((await whoami(h, newest)).status).toBe(200);
    current = newest;
  });

  it('a broken chain: the API answers 200 ok:false; the CLI exits 3 with the same message in both modes', async () => {
    const token = current;
    const intact = await h.api('POST', '/admin/v1/audit/verify', { token });
    expect(intact.status).toBe(200);
    expect(intact.json).toMatchObject({ ok: true, witness: null });

    await h.installation.db.kysely
      .updateTable('audit_log')
      .set({ action: 'team.remove' })
      .where('seq', '=', 2)
      .execute();
    const broken = await h.api('POST', '/admin/v1/audit/verify', { token });
    expect(broken.status).toBe(200);
    expect(broken.json).toMatchObject({ ok: false, firstBroken: { index: 2, reason: 'hash-mismatch' } });

    for (const argv of [
      ['audit', 'verify'],
      ['audit', 'verify', '--json'],
    ]) {
      const here = await local(h, argv);
      expect(here.code).toBe(3);
      expect(here.stderr).toMatch(/audit log broken at entry #2 \(hash-mismatch\)/);
      expect(await remote(h, argv, token)).toEqual(here);
    }
    const json = await local(h, ['audit', 'verify', '--json']);
    expect(JSON.parse(json.stdout)).toEqual(broken.json);
    // verify takes no body fields.
    expect((await h.api('POST', '/admin/v1/audit/verify', { token, body: { deep: true } })).status).toBe(400);
  });
});
