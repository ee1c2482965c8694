// `tollgate restore` refuses, and changes nothing, for a file under another master key, a damaged or
// cut-short file, a wrong passphrase, a file of a newer schema, and a target that holds data; each
// refusal beside a restore of the good file into the same kind of target.
import { readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connect.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { runCli } from '../helpers/cli.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';
import {
  dumpDatabase,
  ENGINES,
  type Engine,
  type Home,
  makeHome,
  rewriteBackup,
  withoutTable,
} from './fixture.js';

const PASSPHRASE = 'correct horse battery staple';

let fake: FakeUpstream;
let source: Home;
let plain: string;
let sealed: string;
let secret: string;
const homes: Home[] = [];

async function target(engine: Engine, options: { freshKey?: boolean } = {}): Promise<Home> {
  const home = await makeHome(engine, options.freshKey ? { freshKey: true } : { masterKeyFrom: source.home });
  homes.push(home);
  return home;
}

function flipByte(bytes: Buffer, at: number): void {
  bytes.writeUInt8((bytes.readUInt8(at) ^ 0x01) & 0xff, at);
}

beforeAll(async () => {
  fake = await startFakeUpstream();
  source = await makeHome('sqlite', { upstream: fake.url });
  homes.push(source);
  expect((await source.run(['init'])).code).toBe(0);
  secret = canaryAnthropicKey();
  expect((await source.run(['credential', 'add', 'org', '--provider', 'anthropic'], secret)).code).toBe(0);
  expect((await source.run(['team', 'add', 'core'])).code).toBe(0);
  expect((await source.run(['user', 'add', 'alice', '--team', 'core', '--monthly-budget', '25'])).code).toBe(
    0,
  );
  expect((await source.run(['key', 'issue', '--user', 'alice'])).code).toBe(0);
  plain = join(source.home, '..', 'plain.tgbak');
  sealed = join(source.home, '..', 'sealed.tgbak');
  expect((await source.run(['backup', '--out', plain])).code).toBe(0);
  const encrypted = await source.run(['backup', '--out', sealed, '--encrypt'], `${PASSPHRASE}\n`);
  expect(encrypted.stderr).toBe('');
  expect(encrypted.code).toBe(0);
}, 120_000);

afterAll(async () => {
  await fake?.close();
  for (const home of homes) await home.cleanup();
});

describe('the backup file', () => {
  it('is private, names the schema and key fingerprint, and holds no secret in the clear', async () => {
    expect((await stat(plain)).mode & 0o777).toBe(0o600);
    expect((await stat(sealed)).mode & 0o777).toBe(0o600);
    const text = await readFile(plain, 'utf8');
    const header = JSON.parse(text.slice(0, text.indexOf('\n'))) as Record<string, unknown>;
    const doctor = await source.run(['doctor']);
    expect(doctor.stdout).toContain(`fingerprint ${String(header.master_key_fingerprint)}`);
    expect(header).toMatchObject({ format: 'tollgate-backup', version: 1, engine: 'sqlite' });
    expect((header.migrations as string[]).at(-1)).toMatch(/^\d{4}-/);
    expect(text).toContain('"alice"');
    // The credential's sealed bytes are carried; its secret and the master key are not.
    expect(text).not.toContain(secret);
    expect(text).not.toContain((await readFile(join(source.home, 'master.key'), 'utf8')).trim());
    const whole = await readFile(sealed);
    expect(whole.includes(Buffer.from('"alice"'))).toBe(false);
  });
});

describe('the local database only', () => {
  it('refuses --server for backup and restore (the commands run without it above)', async () => {
    for (const argv of [
      ['backup', '--out', 'x.tgbak'],
      ['restore', plain],
    ]) {
      const result = await source.run([...argv, '--server', 'http://127.0.0.1:9']);
      expect(result.code, argv[0]).toBe(2);
      expect(result.stderr, argv[0]).toMatch(/works on the local database only/);
    }
  });
});

describe.each(ENGINES)('restore into %s', (engine) => {
  it('restores the good file (control), then refuses a second restore into the now non-empty target', async () => {
    const home = await target(engine);
    const restored = await home.run(['restore', plain]);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expect((await home.run(['audit', 'verify'])).code).toBe(0);
    const users = await home.json<Array<{ name: string }>>(['user', 'list']);
    expect(users.map((u) => u.name)).toContain('alice');
    expect(await home.json(['budget', 'list'])).toEqual(await source.json(['budget', 'list']));
    const before = await dumpDatabase(home);
    const again = await home.run(['restore', plain]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/not empty.*nothing was restored/);
    expect(await dumpDatabase(home)).toEqual(before);
  });

  it('refuses a target initialised as another installation', async () => {
    const home = await makeHome(engine, { freshKey: true });
    homes.push(home);
    // The target's own key sits outside its home so that `init` accepts the home; restore then uses it.
    const keyFile = join(home.home, '..', 'other.key');
    await writeFile(keyFile, await readFile(join(source.home, 'master.key')), { mode: 0o600 });
    const env = { TOLLGATE_MASTER_KEY_FILE: keyFile };
    await rm(join(home.home, 'master.key'));
    expect((await runCli(['init'], { ...home.env, ...env })).code).toBe(0);
    const before = await dumpDatabase(home);
    const refused = await runCli(['restore', plain], { ...home.env, ...env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/not empty/);
    expect(await dumpDatabase(home)).toEqual(before);
  });

  it('restores into a migrated, empty database (control for the emptiness rule)', async () => {
    const home = await target(engine);
    const url = home.env.TOLLGATE_DATABASE_URL;
    const db = openDatabase(
      url ? { kind: 'postgres', url } : { kind: 'sqlite', path: join(home.home, 'tollgate.db') },
    );
    await migrateToLatest(db);
    await db.close();
    const restored = await home.run(['restore', plain]);
    expect(restored.stderr).toBe('');
    expect((await home.run(['audit', 'verify'])).code).toBe(0);
  });

  it('refuses a file taken under another master key', async () => {
    const home = await target(engine, { freshKey: true });
    const before = await dumpDatabase(home);
    const refused = await home.run(['restore', plain]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/needs the master key that was current when the backup was taken/);
    expect(await dumpDatabase(home)).toEqual(before);
  });

  it('refuses a changed byte and a cut-short file', async () => {
    const text = await readFile(plain, 'utf8');
    const changed = join(source.home, '..', `changed-${engine}.tgbak`);
    await writeFile(changed, text.replace('"alice"', '"alicf"'));
    const flipped = join(source.home, '..', `flipped-${engine}.tgbak`);
    const bytes = Buffer.from(text);
    flipByte(bytes, Math.floor(bytes.length / 2));
    await writeFile(flipped, bytes);
    const cut = join(source.home, '..', `cut-${engine}.tgbak`);
    await writeFile(cut, text);
    await truncate(cut, Math.floor(text.length * 0.7));
    const lines = join(source.home, '..', `lines-${engine}.tgbak`);
    await writeFile(lines, text.slice(0, text.lastIndexOf('\n', text.length - 2) + 1));
    for (const [file, reason] of [
      [changed, /checksum does not match/],
      [flipped, /damaged/],
      [cut, /damaged/],
      [lines, /cut short/],
    ] as const) {
      const home = await target(engine);
      const before = await dumpDatabase(home);
      const refused = await home.run(['restore', file]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(reason);
      expect(refused.stderr).toMatch(/nothing was restored/);
      expect(await dumpDatabase(home)).toEqual(before);
    }
  });

  it('opens a sealed file with its passphrase only, and refuses a changed sealed file', async () => {
    const wrong = await target(engine);
    const before = await dumpDatabase(wrong);
    const refused = await wrong.run(['restore', sealed], 'not the passphrase at all\n');
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/wrong passphrase/);
    expect(await dumpDatabase(wrong)).toEqual(before);

    const bytes = await readFile(sealed);
    flipByte(bytes, bytes.length - 40);
    const changed = join(source.home, '..', `sealed-changed-${engine}.tgbak`);
    await writeFile(changed, bytes);
    const damaged = await target(engine);
    const untouched = await dumpDatabase(damaged);
    const refusedChange = await damaged.run(['restore', changed], `${PASSPHRASE}\n`);
    expect(refusedChange.stderr).toMatch(/changed or cut short/);
    expect(await dumpDatabase(damaged)).toEqual(untouched);

    const right = await target(engine);
    const restored = await right.run(['restore', sealed], `${PASSPHRASE}\n`);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expect((await right.run(['audit', 'verify'])).code).toBe(0);
  });

  it('refuses a file of a newer schema; the same rewrite without the new schema restores', async () => {
    const newer = join(source.home, '..', `newer-${engine}.tgbak`);
    await rewriteBackup(plain, newer, (h) => ({
      ...h,
      migrations: [...(h.migrations as string[]), '9999-from-the-future'],
    }));
    const same = join(source.home, '..', `same-${engine}.tgbak`);
    await rewriteBackup(plain, same, (h) => h);
    const home = await target(engine);
    const before = await dumpDatabase(home);
    const refused = await home.run(['restore', newer]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/newer database schema \(9999-from-the-future\).*upgrade Tollgate/);
    expect(await dumpDatabase(home)).toEqual(before);
    const control = await home.run(['restore', same]);
    expect(control.stderr).toBe('');
    expect(control.code).toBe(0);
  });

  it('restores a file of an older schema into a brand-new database, then migrates it', async () => {
    // 0022 only adds the per-person audit keys: without that table the rows are a valid backup of the
    // schema before it (0019).
    const older = join(source.home, '..', `older-${engine}.tgbak`);
    await withoutTable(plain, older, 'person_keys', '0022-person-keys');
    const migrated = await target(engine);
    const url = migrated.env.TOLLGATE_DATABASE_URL;
    const db = openDatabase(
      url ? { kind: 'postgres', url } : { kind: 'sqlite', path: join(migrated.home, 'tollgate.db') },
    );
    await migrateToLatest(db);
    await db.close();
    const before = await dumpDatabase(migrated);
    const refused = await migrated.run(['restore', older]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/restore it into a brand-new database/);
    expect(await dumpDatabase(migrated)).toEqual(before);

    const fresh = await target(engine);
    const restored = await fresh.run(['restore', older]);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    const dump = await dumpDatabase(fresh);
    expect(dump.tollgate_migrations?.some((m) => m.includes('0019-serve-instances'))).toBe(true);
    expect(dump.serve_instances).toEqual([]);
    expect(dump.tollgate_migrations?.some((m) => m.includes('0022-person-keys'))).toBe(true);
    expect((await fresh.run(['audit', 'verify'])).code).toBe(0);
  });

  it('leaves the row counts of the restored copy equal to the source', async () => {
    const home = await target(engine);
    expect((await home.run(['restore', plain])).code).toBe(0);
    const src = await dumpDatabase(source);
    const dst = await dumpDatabase(home);
    for (const table of ['teams', 'users', 'credentials', 'gateway_keys', 'budgets', 'meta']) {
      expect(dst[table]?.length, table).toBe(src[table]?.length);
    }
    // The audit chain of the file, continued by one entry that records the restore.
    const text = await readFile(plain, 'utf8');
    const trailer = JSON.parse(text.trim().split('\n').at(-1) ?? '{}') as { rows: Record<string, number> };
    expect(dst.audit_log?.length).toBe((trailer.rows.audit_log ?? 0) + 1);
    const entries = await home.json<Array<{ action: string }>>(['audit', 'list', '--limit', '1000']);
    expect(entries.at(-1)?.action).toBe('install.restore');
    expect(entries.filter((e) => e.action === 'install.restore')).toHaveLength(1);
    // The sealed credential opens under the same key: the restored vault lists it as it was.
    expect(await home.json(['credential', 'list'])).toEqual(await source.json(['credential', 'list']));
  });
});
