// The admin-token service on a real installation: only keyed hashes are stored, the principal honours
// revocation and rotation at the next call, and revokeAdminTokensOf (for user removal and demotion)
// revokes exactly the holder's live tokens.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPgSchema } from '../../test/helpers/pg.js';
import { authenticateAdmin } from '../api/principal.js';
import { loadConfig } from '../config/load.js';
import { hashGatewayKey } from '../crypto/gateway-key.js';
import { writeTransaction } from '../db/tx.js';
import { type Installation, initInstallation } from '../install/installation.js';
import { createServices, type Services } from '../services.js';
import { revokeAdminTokensOf } from './admin-token.service.js';

const by = { actor: 'cli:test' };
const pgUrl = process.env.TOLLGATE_TEST_DATABASE_URL;

/** SQLite always; PostgreSQL (a throw-away schema) when TOLLGATE_TEST_DATABASE_URL is set. */
const databases: Array<[string, () => Promise<{ env: Record<string, string>; drop: () => Promise<void> }>]> =
  [['sqlite', async () => ({ env: {}, drop: async () => {} })]];
if (pgUrl)
  databases.push([
    'postgres',
    async () => {
      const schema = await createPgSchema(pgUrl);
      return { env: { TOLLGATE_DATABASE_URL: schema.url }, drop: schema.drop };
    },
  ]);

describe.each(databases)('admin-token service on %s', (_name, database) => {
  let dir: string;
  let drop: () => Promise<void>;
  let installation: Installation;
  let services: Services;
  let installationToken: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-atk-'));
    const db = await database();
    drop = db.drop;
    const config = await loadConfig({ env: { TOLLGATE_HOME: join(dir, 'home'), ...db.env }, cwd: dir });
    const init = await initInstallation(config, Date.now, 'test');
    installation = init.installation;
    installationToken = init.adminToken;
    services = createServices(installation, config, Date.now);
    await services.users.add(by, { name: 'ada', role: 'admin' });
    await services.users.add(by, { name: 'bo', role: 'admin' });
    await services.users.add(by, { name: 'svc', role: 'service' });
  });
  afterEach(async () => {
    await installation.close();
    await drop();
    await rm(dir, { recursive: true, force: true });
  });

  const auth = (token: string) => authenticateAdmin(installation, token, Date.now());

  it('stores only the keyed hash and the hint; the token authenticates as its holder', async () => {
    const { token, view } = await services.adminTokens.issue(by, { user: 'ada', name: 'ci' });
    const row = await installation.db.kysely
      .selectFrom('admin_tokens')
      .selectAll()
      .where('id', '=', view.id)
      .executeTakeFirstOrThrow();
    expect(row.hash).toBe(hashGatewayKey(installation.pepper, token));
    expect(JSON.stringify(row)).not.toContain(token.slice(4, 40));
    expect(row).toMatchObject({ name: 'ci', hint: view.hint, created_by: 'cli:test', revoked_at: null });
    expect(await auth(token)).toMatchObject({ kind: 'admin', actor: 'admin:ada', tokenId: view.id });
  });

  it('refuses a service account, a bad name and an unknown user, and stores nothing', async () => {
    await expect(services.adminTokens.issue(by, { user: 'svc' })).rejects.toMatchObject({
      code: 'invalid_input',
      message: expect.stringMatching(/svc is a service, not an admin/),
    });
    await expect(services.adminTokens.issue(by, { user: 'ada', name: 'no spaces' })).rejects.toMatchObject({
      code: 'invalid_input',
    });
    await expect(services.adminTokens.issue(by, { user: 'nobody' })).rejects.toMatchObject({
      code: 'not_found',
    });
    expect(await services.adminTokens.list()).toEqual([]);
    // Control: the same call for an admin stores one.
    await services.adminTokens.issue(by, { user: 'ada' });
    expect(await services.adminTokens.list()).toHaveLength(1);
  });

  it('revoke stops the token at the next call; revoking again is a conflict', async () => {
    const { token, view } = await services.adminTokens.issue(by, { user: 'ada' });
    const revoked = await services.adminTokens.revoke(by, view.id);
    expect(revoked.status).toBe('revoked');
    await expect(auth(token)).rejects.toMatchObject({ code: 'unauthenticated' });
    await expect(services.adminTokens.revoke(by, view.id)).rejects.toMatchObject({ code: 'conflict' });
    await expect(services.adminTokens.revoke(by, 'atk_missing')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('revokeAdminTokensOf revokes the live tokens of one user only', async () => {
    const a1 = await services.adminTokens.issue(by, { user: 'ada' });
    const a2 = await services.adminTokens.issue(by, { user: 'ada' });
    const b = await services.adminTokens.issue(by, { user: 'bo' });
    await services.adminTokens.revoke(by, a2.view.id);
    const user = await services.users.get('ada');
    const count = await writeTransaction(installation.db, (tx) => revokeAdminTokensOf(tx, user.id, 42));
    expect(count).toBe(1);
    await expect(auth(a1.token)).rejects.toMatchObject({ code: 'unauthenticated' });
    expect(await auth(b.token)).toMatchObject({ actor: 'admin:bo' });
    const listed = await services.adminTokens.list({ user: 'ada' });
    // Listed oldest first, ties (the same millisecond) by random id: compare as a set.
    expect(new Map(listed.map((t) => [t.id, t.status]))).toEqual(
      new Map([
        [a1.view.id, 'revoked'],
        [a2.view.id, 'revoked'],
      ]),
    );
    // The earlier revocation keeps its own time.
    expect(listed.find((t) => t.id === a1.view.id)?.revokedAt).toBe(42);
    expect(listed.find((t) => t.id === a2.view.id)?.revokedAt).not.toBe(42);
  });

  it('rotateInstallation replaces the installation token at once and audits only its hint', async () => {
    expect(await auth(installationToken)).toEqual({ kind: 'installation', actor: 'admin-token' });
    const { token, hint } = await services.adminTokens.rotateInstallation(by);
    await expect(auth(installationToken)).rejects.toMatchObject({ code: 'unauthenticated' });
    expect(await auth(token)).toEqual({ kind: 'installation', actor: 'admin-token' });
    const [entry] = await services.audit.list({ action: 'admin_token.rotate' });
    expect(entry).toMatchObject({ actor: 'cli:test', targetType: 'org', details: { hint } });
    expect(JSON.stringify(await services.audit.list({ limit: 1000 }))).not.toContain(token.slice(4, 40));
  });
});
