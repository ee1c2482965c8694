// `credential export` / `credential import` through the CLI: a 0600 bundle that leaks nothing, a
// faithful round trip into another installation, and refusals that change nothing.
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBundle } from '../../src/vault/bundle.js';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { canaryAnthropicKey, findLeaks } from '../helpers/secrets.js';
import { databaseDigest } from '../helpers/snapshot.js';

interface Listed {
  name: string;
  provider: string;
  owner: string;
  environment: string | null;
  status: string;
  preferred: boolean;
  hint: string;
  rotated_at: string | null;
}

interface Report {
  imported: string[];
  replaced: string[];
  skipped: Array<{ name: string; reason: string }>;
}

const passphrase = 'a long bundle passphrase 42';
const withPassphrase = { env: { TOLLGATE_EXPORT_PASSPHRASE: passphrase } };
const orgKey = canaryAnthropicKey();
const aliceKey = canaryAnthropicKey();
const githubToken = `ghp_testcanary${randomBytes(20).toString('hex').slice(0, 26)}`;
const canaries = [orgKey, aliceKey, githubToken];

const comparable = (rows: Listed[]) =>
  rows.map(({ name, provider, owner, environment, status, preferred, hint }) => ({
    name,
    provider,
    owner,
    environment,
    status,
    preferred,
    hint,
  }));

describe('credential export and import', () => {
  let source: CliHome;
  let target: CliHome;
  let bundle: string;

  const list = (cli: CliHome) => cli.json<Listed[]>(['credential', 'list']);

  beforeAll(async () => {
    source = await tempHome();
    target = await tempHome();
    bundle = join(source.home, '..', 'credentials.bundle');
    for (const cli of [source, target]) {
      expect((await cli.run(['init'])).code).toBe(0);
      expect((await cli.run(['user', 'add', 'alice'])).code).toBe(0);
    }
    const add = async (argv: string[], secret: string) =>
      expect(
        (await source.run(['credential', 'add', ...argv, '--no-validate'], { stdin: secret })).code,
      ).toBe(0);
    await add(['org-key', '--provider', 'anthropic'], orgKey);
    await add(['alice-key', '--provider', 'anthropic', '--owner', 'user:alice'], aliceKey);
    await add(['gh', '--provider', 'github', '--env', 'prod'], githubToken);
  });

  afterAll(async () => {
    await source.cleanup();
    await target.cleanup();
  });

  it('exports to a 0600 file that contains no secret in any encoding', async () => {
    const result = await source.run(['credential', 'export', '--out', bundle], withPassphrase);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Exported 3 credentials/);
    for (const row of await list(source)) expect(result.stdout).toContain(`${row.name} (${row.provider}`);
    expect(result.stdout).toContain(`${orgKey.slice(0, 16)}...${orgKey.slice(-4)}`);
    expect((await stat(bundle)).mode & 0o777).toBe(0o600);
    expect(findLeaks(await readFile(bundle), canaries)).toEqual([]);
    expect(findLeaks(source.transcript(), canaries)).toEqual([]);
    const audit = await source.json<Array<{ action: string }>>(['audit', 'list']);
    expect(audit.map((e) => e.action)).toContain('credential.export');
  });

  it('refuses to overwrite the file unless --force, and refuses short passphrases', async () => {
    const before = await readFile(bundle, 'utf8');
    const again = await source.run(['credential', 'export', '--out', bundle], withPassphrase);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists; use --force/);
    expect(await readFile(bundle, 'utf8')).toBe(before);

    const short = join(source.home, '..', 'short.bundle');
    const weak = await source.run(['credential', 'export', '--out', short], {
      env: { TOLLGATE_EXPORT_PASSPHRASE: 'too short' },
    });
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/at least 12 characters/);
    await expect(stat(short)).rejects.toThrow(/ENOENT/);

    const forced = await source.json<{ exported: number; file: string }>(
      ['credential', 'export', '--out', bundle, '--force'],
      withPassphrase,
    );
    expect(forced).toEqual({ exported: 3, file: bundle });
    expect(await readFile(bundle, 'utf8')).not.toBe(before);
    expect((await stat(bundle)).mode & 0o777).toBe(0o600);
  });

  it('imports into another installation: the same credentials with the same secrets', async () => {
    const report = await target.json<Report>(['credential', 'import', bundle], withPassphrase);
    expect(report).toEqual({ imported: ['alice-key', 'gh', 'org-key'], replaced: [], skipped: [] });
    expect(comparable(await list(target))).toEqual(comparable(await list(source)));

    // The secrets themselves arrived intact: export them again and open the bundle here.
    const copy = join(target.home, '..', 'copy.bundle');
    expect((await target.run(['credential', 'export', '--out', copy], withPassphrase)).code).toBe(0);
    const { entries } = await openBundle(await readFile(copy, 'utf8'), passphrase);
    expect(Object.fromEntries(entries.map((e) => [e.name, e.secret]))).toEqual({
      'alice-key': aliceKey,
      gh: githubToken,
      'org-key': orgKey,
    });

    const db = await readFile(join(target.home, 'tollgate.db'));
    const wal = await readFile(join(target.home, 'tollgate.db-wal')).catch(() => Buffer.alloc(0));
    expect(findLeaks(db, canaries)).toEqual([]);
    expect(findLeaks(wal, canaries)).toEqual([]);
    expect(findLeaks(target.transcript(), canaries)).toEqual([]);
  });

  it('skips existing names unless --replace, which rotates their secrets in place', async () => {
    const before = await list(target);
    const again = await target.run(['credential', 'import', bundle], withPassphrase);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/Skipped 3 credentials/);
    expect(again.stdout).toMatch(/org-key: exists \(use --replace\)/);
    expect(again.stdout).toMatch(/Nothing was imported/);
    expect(await list(target)).toEqual(before);

    expect((await target.run(['credential', 'disable', 'gh'])).code).toBe(0);
    const replaced = await target.run(['credential', 'import', bundle, '--replace'], withPassphrase);
    expect(replaced.code).toBe(0);
    expect(replaced.stdout).toMatch(/Replaced the secret of 3 credentials/);
    expect(replaced.stdout).toMatch(/not re-validated upstream/);
    const after = await list(target);
    expect(after.every((c) => c.rotated_at !== null)).toBe(true);
    // Same secrets, so the same hints; a credential disabled here stays disabled.
    expect(after.map((c) => [c.name, c.hint, c.status])).toEqual(
      before.map((c) => [c.name, c.hint, c.name === 'gh' ? 'inactive' : c.status]),
    );
    expect((await target.run(['audit', 'verify'])).code).toBe(0);
    expect(findLeaks(target.transcript(), canaries)).toEqual([]);
  });

  it('skips credentials whose owner does not exist in the installation', async () => {
    const third = await tempHome();
    try {
      expect((await third.run(['init'])).code).toBe(0);
      // No passphrase variable: it is read from standard input.
      const result = await third.run(['credential', 'import', bundle, '--json'], {
        stdin: `${passphrase}\n`,
      });
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout) as Report;
      expect(report.imported).toEqual(['gh', 'org-key']);
      expect(report.skipped).toEqual([
        { name: 'alice-key', reason: expect.stringMatching(/owner user:alice does not exist/) },
      ]);
    } finally {
      await third.cleanup();
    }
  });

  it('refuses a wrong passphrase, a tampered file and a non-bundle, changing nothing', async () => {
    const dbFile = join(target.home, 'tollgate.db');
    const before = await list(target);
    const digest = databaseDigest(dbFile);
    const refused = async (file: string, env: Record<string, string>, code: number, message: RegExp) => {
      const result = await target.run(['credential', 'import', file, '--replace'], { env });
      expect(result.code).toBe(code);
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(await list(target)).toEqual(before);
      expect(databaseDigest(dbFile)).toBe(digest);
    };
    const opaque = /the bundle could not be opened: wrong passphrase or the file was modified/;

    await refused(bundle, { TOLLGATE_EXPORT_PASSPHRASE: `${passphrase}x` }, 3, opaque);

    const doc = JSON.parse(await readFile(bundle, 'utf8')) as { ciphertext: string };
    const bytes = Buffer.from(doc.ciphertext, 'base64');
    bytes[10] = bytes[10]! ^ 0x80;
    const tampered = join(target.home, '..', 'tampered.bundle');
    await writeFile(tampered, JSON.stringify({ ...doc, ciphertext: bytes.toString('base64') }));
    await refused(tampered, withPassphrase.env, 3, opaque);

    const notBundle = join(target.home, '..', 'not-a-bundle.json');
    await writeFile(notBundle, '{"hello": "world"}');
    await refused(notBundle, withPassphrase.env, 2, /not a valid Tollgate credentials bundle/);
    await refused(join(target.home, '..', 'missing.bundle'), withPassphrase.env, 1, /no such file/);
  });
});
