// The session store on a real installation (SQLite; PostgreSQL too when TOLLGATE_TEST_DATABASE_URL is
// set): only a keyed hash of the id is stored; idle and absolute expiry; the person's standing is read
// at every call; ending one, all, or all but one; de-provisioning ends sessions with the keys.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPgSchema } from '../../test/helpers/pg.js';
import { loadConfig } from '../config/load.js';
import { hashGatewayKey } from '../crypto/gateway-key.js';
import { writeTransaction } from '../db/tx.js';
import { change } from '../install/context.js';
import { type Installation, initInstallation } from '../install/installation.js';
import { createServices, type Services } from '../services.js';
import { endAllOf, type SessionStore } from './session.store.js';

const by = { actor: 'cli:test' };
const pgUrl = process.env.TOLLGATE_TEST_DATABASE_URL;
const MINUTE = 60_000;

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

describe.each(databases)('session store on %s', (_name, database) => {
  let dir: string;
  let drop: () => Promise<void>;
  let installation: Installation;
  let services: Services;
  let sessions: SessionStore;
  let now = Date.UTC(2026, 11, 5, 9);
  const clock = () => now;

  beforeEach(async () => {
    now = Date.UTC(2026, 11, 5, 9);
    dir = await mkdtemp(join(tmpdir(), 'tollgate-ses-'));
    const db = await database();
    drop = db.drop;
    const env = {
      TOLLGATE_HOME: join(dir, 'home'),
      TOLLGATE_AUTH_SESSION_IDLE_MINUTES: '30',
      TOLLGATE_AUTH_SESSION_MAX_HOURS: '8',
      ...db.env,
    };
    const config = await loadConfig({ env, cwd: dir });
    installation = (await initInstallation(config, clock, 'test')).installation;
    services = createServices(installation, config, clock);
    sessions = services.sessions;
    await services.users.add(by, { name: 'ada', role: 'admin' });
    await services.users.add(by, { name: 'bo', role: 'member' });
  });
  afterEach(async () => {
    await installation.close();
    await drop();
    await rm(dir, { recursive: true, force: true });
  });

  const open = async (user: string | null) => {
    const userId = user === null ? null : (await services.users.get(user)).id;
    return change({ installation, clock }, by, (u) =>
      sessions.open(u, { userId, method: 'password', ip: '10.0.0.1', userAgent: 'test' }),
    );
  };

  it('stores only the keyed hash of the id; the id resolves to its person', async () => {
    const s = await open('ada');
    expect(s.token).toMatch(/^tgs_[0-9A-Za-z]{49}$/);
    const rows = await installation.db.kysely.selectFrom('sessions').selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(s.token);
    expect(rows[0]?.hash).toBe(hashGatewayKey(installation.pepper, s.token));
    const live = await sessions.resolve(s.token, now);
    expect(live?.person).toMatchObject({ name: 'ada', role: 'admin' });
    // A malformed or unknown id resolves to nothing (the malformed one without a lookup).
    // Another last character (never the same one: a token ending in x once made this test pass nothing).
    const other = s.token.endsWith('x') ? 'y' : 'x';
    expect(await sessions.resolve(`${s.token.slice(0, -1)}${other}`, now)).toBeNull();
    expect(await sessions.resolve('tgs_short', now)).toBeNull();
  });

  it('ends after the idle time unless used, and at the absolute expiry however busy', async () => {
    const s = await open('bo');
    // Used every 20 minutes: the idle clock restarts each time.
    for (let i = 0; i < 20; i++) {
      now += 20 * MINUTE;
      const live = await sessions.resolve(s.token, now);
      if (now - Date.UTC(2026, 11, 5, 9) < 8 * 60 * MINUTE) expect(live, `after ${i}`).not.toBeNull();
      else expect(live, `after ${i}`).toBeNull(); // 8 h absolute
    }
    const idle = await open('bo');
    now += 29 * MINUTE;
    expect(await sessions.resolve(idle.token, now)).not.toBeNull();
    now += 30 * MINUTE;
    expect(await sessions.resolve(idle.token, now)).toBeNull();
  });

  it('reads the person at every call: removed, disabled or turned into a service ends the session', async () => {
    const s = await open('bo');
    await services.users.update(by, 'bo', { role: 'admin' });
    expect((await sessions.resolve(s.token, now))?.person?.role).toBe('admin');
    await services.users.update(by, 'bo', { role: 'service' });
    expect(await sessions.resolve(s.token, now)).toBeNull();
    await services.users.update(by, 'bo', { role: 'member' });
    expect(await sessions.resolve(s.token, now)).not.toBeNull();
    await services.users.disable(by, 'bo', 'test');
    expect(await sessions.resolve(s.token, now)).toBeNull();
  });

  it('ends one, every one of a person but one, and every admin-token session', async () => {
    const [a, b, c, admin] = [await open('ada'), await open('ada'), await open('bo'), await open(null)];
    expect(await sessions.end(a.id, 'logout', now)).toBe(true);
    expect(await sessions.end(a.id, 'logout', now)).toBe(false);
    const adaId = (await services.users.get('ada')).id;
    const extra = await open('ada');
    expect(await writeTransaction(installation.db, (tx) => endAllOf(tx, adaId, 'test', now, extra.id))).toBe(
      1,
    );
    expect(await sessions.resolve(b.token, now)).toBeNull();
    expect(await sessions.resolve(extra.token, now)).not.toBeNull();
    expect(await sessions.resolve(c.token, now)).not.toBeNull();
    // Rotating the installation's admin token ends the sessions it opened, and only those.
    await services.adminTokens.rotateInstallation(by);
    expect(await sessions.resolve(admin.token, now)).toBeNull();
    expect(await sessions.resolve(c.token, now)).not.toBeNull();
  });

  it('removing a person ends their sessions and revokes their keys in one audited change', async () => {
    const s = await open('bo');
    const key = await services.keys.issue(by, { user: 'bo', policy: {} });
    await services.users.remove(by, 'bo');
    expect(await sessions.resolve(s.token, now)).toBeNull();
    expect((await services.keys.show(key.id)).status).toBe('revoked');
    const entry = await installation.db.kysely
      .selectFrom('audit_log')
      .select('details')
      .where('action', '=', 'user.remove')
      .executeTakeFirstOrThrow();
    expect(JSON.parse(String(entry.details))).toMatchObject({ revoked_keys: 1, ended_sessions: 1 });
  });
});
