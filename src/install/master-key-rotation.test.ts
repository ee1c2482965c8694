// The rotation against a real database (SQLite, and PostgreSQL when TOLLGATE_TEST_DATABASE_URL is
// set): re-wrap in batches, a process still holding only the previous key (its audited change after
// the start is rolled back, it learns the new key, the retry commits under it), shredded records,
// and a stopped rotation resumed to completion.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPgSchema, PG_URL, type PgSchema } from '../../test/helpers/pg.js';
import { canaryAnthropicKey } from '../../test/helpers/secrets.js';
import { loadConfig } from '../config/load.js';
import { generateMasterKeyText } from '../crypto/master-key.js';
import { systemClock } from '../lib/clock.js';
import { createServices } from '../services.js';
import { initInstallation, openInstallation } from './installation.js';
import { rotateMasterKey } from './master-key-rotation.js';
import { readKeyMeta } from './master-keys.js';

const targets = [{ name: 'sqlite' }, ...(PG_URL ? [{ name: 'postgres' }] : [])];
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

class Stop extends Error {}
const admin = { actor: 'test' };

describe.each(targets)('master-key rotation on $name', ({ name }) => {
  async function setup() {
    const dir = await mkdtemp(join(tmpdir(), 'tollgate-rotate-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    let schema: PgSchema | null = null;
    if (name === 'postgres' && PG_URL) {
      const s = await createPgSchema(PG_URL);
      schema = s;
      cleanups.push(() => s.drop());
    }
    const env: Record<string, string> = {
      TOLLGATE_HOME: join(dir, 'home'),
      TOLLGATE_MASTER_KEY: generateMasterKeyText(),
      TOLLGATE_UPSTREAM_URL: 'http://127.0.0.1:9',
      ...(schema ? { TOLLGATE_DATABASE_URL: schema.url } : {}),
    };
    const config = async (extra: Record<string, string> = {}) =>
      loadConfig({ env: { ...env, ...extra }, cwd: dir });
    const { installation } = await initInstallation(await config(), systemClock, 'test');
    cleanups.push(() => installation.close());
    const services = createServices(installation, await config(), systemClock);
    const secrets = new Map<string, string>();
    for (let i = 0; i < 7; i++) {
      const secret = canaryAnthropicKey();
      await services.credentials.add(admin, {
        name: `c${i}`,
        provider: 'anthropic',
        secret,
        validate: false,
      });
      secrets.set(`c${i}`, secret);
    }
    return { env, config, installation, services, secrets };
  }

  it('a process with the previous key: refused at the anchor after the start, then learns the key', async () => {
    const { config, installation, services, secrets } = await setup();
    await expect(
      rotateMasterKey(await config(), {
        clock: systemClock,
        actor: admin,
        pause: {
          at: 'started',
          fn: async () => {
            throw new Stop();
          },
        },
      }),
    ).rejects.toBeInstanceOf(Stop);
    expect(installation.master.version).toBe(1);
    // Its change sealed under the previous key is rolled back: nothing under version 1 after the start.
    const late = canaryAnthropicKey();
    const add = () =>
      services.credentials.add(admin, { name: 'late', provider: 'anthropic', secret: late, validate: false });
    await expect(add()).rejects.toMatchObject({ code: 'conflict' });
    expect(installation.master.version).toBe(2);
    const none = await installation.db.kysely
      .selectFrom('credentials')
      .select('id')
      .where('name', '=', 'late')
      .execute();
    expect(none).toEqual([]);
    await add();
    secrets.set('late', late);
    const row = await installation.db.kysely
      .selectFrom('credentials')
      .select('key_version')
      .where('name', '=', 'late')
      .executeTakeFirstOrThrow();
    expect(row.key_version).toBe(2);
    for (const [n, s] of secrets) expect(await services.credentials.reveal(n)).toBe(s);
  });

  it('re-wraps in batches (shredded records too), stops, resumes, and completes with the new key', async () => {
    const { env, config, installation, services, secrets } = await setup();
    await services.users.add(admin, { name: 'ann', team: null, monthlyBudgetMicro: null });
    await services.credentials.add(admin, {
      name: 'ann-key',
      provider: 'anthropic',
      secret: canaryAnthropicKey(),
      validate: false,
      owner: { type: 'user', name: 'ann' },
    });
    await services.users.remove(admin, 'ann'); // shreds ann's credential: empty blobs
    // A process that opened the installation before the rotation and is told nothing about it.
    const other = await openInstallation(await config());
    cleanups.push(() => other.close());
    let newKey = '';
    await expect(
      rotateMasterKey(await config(), {
        clock: systemClock,
        actor: admin,
        batchSize: 2,
        onNewKey: (text) => {
          newKey = text;
        },
        pause: {
          at: 4,
          fn: async () => {
            throw new Stop();
          },
        },
      }),
    ).rejects.toBeInstanceOf(Stop);
    expect(newKey).not.toBe('');
    const versions = async () =>
      (await installation.db.kysely.selectFrom('credentials').select('key_version').execute())
        .map((r) => r.key_version)
        .sort();
    expect((await versions()).filter((v) => v === 2)).toHaveLength(4);
    // It meets records of version 2, learns the new key from the rotation row and opens them all.
    const otherServices = createServices(other, await config(), systemClock);
    for (const [n, v] of secrets) expect(await otherServices.credentials.reveal(n)).toBe(v);
    expect(other.master.version).toBe(2);
    // Resumed with the previous key: re-wraps the rest, prints the key again, does not complete.
    let printed = '';
    const resumed = await rotateMasterKey(await config(), {
      clock: systemClock,
      actor: admin,
      onNewKey: (t) => {
        printed = t;
      },
    });
    // The 4 credentials left, and ann's audit key (her user.add entry's fields are sealed under it).
    expect(resumed).toMatchObject({ started: false, completed: false, rewrapped: 5 });
    const people = await installation.db.kysely.selectFrom('person_keys').select('key_version').execute();
    expect(people.length).toBeGreaterThan(0);
    expect(new Set(people.map((p) => p.key_version))).toEqual(new Set([2]));
    expect(printed).toBe(newKey);
    expect(new Set(await versions())).toEqual(new Set([2]));
    expect((await readKeyMeta(installation.db))?.rotation?.rewrapped).toBe(true);
    // Completed with the new key: the row (the new key sealed under the old) is gone.
    const completed = await rotateMasterKey(await config({ TOLLGATE_MASTER_KEY: newKey }), {
      clock: systemClock,
      actor: admin,
    });
    expect(completed).toMatchObject({ completed: true, rewrapped: 0 });
    expect((await readKeyMeta(installation.db))?.rotation).toBeNull();
    await expect(openInstallation(await config())).rejects.toMatchObject({ code: 'master_key_invalid' });
    const fresh = await openInstallation(await config({ TOLLGATE_MASTER_KEY: newKey }));
    try {
      const s = createServices(fresh, await config({ TOLLGATE_MASTER_KEY: newKey }), systemClock);
      for (const [n, v] of secrets) expect(await s.credentials.reveal(n)).toBe(v);
      expect(await s.audit.verify()).toMatchObject({ ok: true });
      // Personal fields sealed before the rotation still open with the new key alone.
      const added = (await s.audit.list({ action: 'user.add' })).find((e) => e.targetType === 'user');
      expect(added?.details).toMatchObject({ name: 'ann' });
    } finally {
      await fresh.close();
    }
    expect(env.TOLLGATE_MASTER_KEY).not.toBe(newKey);
  });
});
