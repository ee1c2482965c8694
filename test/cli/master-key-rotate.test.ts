// `tollgate master-key rotate`: every credential decrypts afterwards, the audit chain verifies, the
// previous key is refused; the env-supplied key path prints the new key once and completes only
// when run with it; a wrong key changes nothing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { generateMasterKeyText } from '../../src/crypto/master-key.js';
import { openInstallation } from '../../src/install/installation.js';
import { systemClock } from '../../src/lib/clock.js';
import { createServices } from '../../src/services.js';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { serve } from '../helpers/runbook.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

const homes: CliHome[] = [];
afterEach(async () => {
  for (const h of homes.splice(0)) await h.cleanup();
});

async function home(env: Record<string, string> = {}): Promise<CliHome> {
  const cli = await tempHome(env);
  homes.push(cli);
  return cli;
}

async function addCredentials(cli: CliHome, n: number): Promise<Map<string, string>> {
  const secrets = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const secret = canaryAnthropicKey();
    const r = await cli.run(['credential', 'add', `c${i}`, '--provider', 'anthropic', '--no-validate'], {
      stdin: secret,
    });
    expect(r.code, r.stderr).toBe(0);
    secrets.set(`c${i}`, secret);
  }
  return secrets;
}

async function revealAll(cli: CliHome, env: Record<string, string> = {}) {
  const config = await loadConfig({ env: { ...cli.env, ...env }, cwd: join(cli.home, '..') });
  const installation = await openInstallation(config);
  try {
    const services = createServices(installation, config, systemClock);
    const out = new Map<string, string>();
    const rows = await installation.db.kysely
      .selectFrom('credentials')
      .select(['name', 'key_version'])
      .execute();
    for (const row of rows) out.set(row.name, await services.credentials.reveal(row.name));
    return { secrets: out, versions: rows.map((r) => r.key_version), master: installation.master };
  } finally {
    await installation.close();
  }
}

describe('master-key rotate with the home key file', () => {
  it('re-wraps every credential; the new key opens all, the old one is refused, audit verifies', async () => {
    const cli = await home();
    expect((await cli.run(['init'])).code).toBe(0);
    const secrets = await addCredentials(cli, 5);
    const keyFile = join(cli.home, 'master.key');
    const oldKey = readFileSync(keyFile, 'utf8').trim();
    const before = await revealAll(cli);
    expect(before.versions).toEqual([1, 1, 1, 1, 1]);

    const r = await cli.json<Record<string, unknown>>(['master-key', 'rotate']);
    expect(r).toMatchObject({
      from_version: 1,
      to_version: 2,
      completed: true,
      rewrapped: 5,
      source: 'home-file',
    });
    expect(r.master_key).toBeUndefined();
    const newKey = readFileSync(keyFile, 'utf8').trim();
    expect(newKey).not.toBe(oldKey);
    // The previous key is kept beside it (0600) for the backups taken before.
    expect(readFileSync(`${keyFile}.v1`, 'utf8').trim()).toBe(oldKey);
    expect(cli.transcript()).not.toContain(newKey);
    expect(cli.transcript()).not.toContain(oldKey);

    const after = await revealAll(cli);
    expect(after.secrets).toEqual(secrets);
    expect(after.versions).toEqual([2, 2, 2, 2, 2]);
    expect(after.master.version).toBe(2);
    const verify = await cli.run(['audit', 'verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const audit = await cli.json<Array<{ action: string; details: Record<string, unknown> }>>([
      'audit',
      'list',
      '--action',
      'master_key.rotate',
    ]);
    expect(audit.map((a) => a.details.step).sort()).toEqual(['complete', 'start']);
    expect(JSON.stringify(audit)).not.toContain(newKey);

    // The previous key is refused now (beside the new key, which opens: the control above).
    const old = await cli.run(['credential', 'list'], { env: { TOLLGATE_MASTER_KEY: oldKey } });
    expect(old.code).not.toBe(0);
    expect(old.stderr).toContain('does not belong to this installation');

    // A second rotation: version 3, and still every secret.
    const again = await cli.json<Record<string, unknown>>(['master-key', 'rotate']);
    expect(again).toMatchObject({ from_version: 2, to_version: 3, completed: true });
    expect((await revealAll(cli)).secrets).toEqual(secrets);
  });

  it('a wrong key refuses and changes nothing (beside the right key, which rotates)', async () => {
    const cli = await home();
    await cli.run(['init']);
    await addCredentials(cli, 2);
    const keyFile = join(cli.home, 'master.key');
    const keyBefore = readFileSync(keyFile, 'utf8');
    const wrong = await cli.run(['master-key', 'rotate'], {
      env: { TOLLGATE_MASTER_KEY: generateMasterKeyText() },
    });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('does not belong to this installation');
    expect(readFileSync(keyFile, 'utf8')).toBe(keyBefore);
    expect((await revealAll(cli)).versions).toEqual([1, 1]);
    const audit = await cli.json<unknown[]>(['audit', 'list', '--action', 'master_key.rotate']);
    expect(audit).toEqual([]);
    expect((await cli.run(['master-key', 'rotate'])).code).toBe(0);
    expect((await revealAll(cli)).versions).toEqual([2, 2]);
  });
});

describe('master-key rotate with an audit witness', () => {
  it('restarts the witness at the re-keyed head, so verify agrees after the rotation', async () => {
    const cli = await home();
    const witness = join(cli.home, '..', 'audit.witness');
    cli.env.TOLLGATE_AUDIT_WITNESS_PATH = witness;
    await cli.run(['init']);
    await addCredentials(cli, 2);
    const before = await cli.run(['audit', 'verify']);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toContain(`witness ${witness} agrees`);
    expect((await cli.run(['master-key', 'rotate'])).code).toBe(0);
    const after = await cli.run(['audit', 'verify']);
    expect(after.code, after.stdout + after.stderr).toBe(0);
    expect(after.stdout).toContain(`witness ${witness} agrees`);
    // Every line left verifies under the new key: the chain's head since the rotation started.
    const seqs = readFileSync(witness, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(seqs.length).toBeGreaterThan(0);
    expect(Math.min(...seqs)).toBeGreaterThanOrEqual(4);
  });
});

describe('master-key rotate with TOLLGATE_MASTER_KEY', () => {
  it('does not complete while a running server was started with the previous key; after its restart it does', {
    timeout: 60_000,
  }, async () => {
    const oldKey = generateMasterKeyText();
    const cli = await home({ TOLLGATE_MASTER_KEY: oldKey, TOLLGATE_LOGGING_LEVEL: 'silent' });
    expect((await cli.run(['init'])).code).toBe(0);
    await addCredentials(cli, 1);
    const dir = join(cli.home, '..');
    const running = await serve(cli.env, dir);
    try {
      const first = await cli.json<{ master_key: string }>(['master-key', 'rotate']);
      const newKey = first.master_key;
      // Step 4 too early: the server still has only the previous key in its source.
      const early = await cli.run(['master-key', 'rotate'], { env: { TOLLGATE_MASTER_KEY: newKey } });
      expect(early.code).not.toBe(0);
      expect(early.stderr).toMatch(
        new RegExp(
          `1 running Tollgate process was started with the previous master key \\(version 1\\).*pid ${running.child.pid}.*not completed`,
        ),
      );
      // Not completed: the previous key still opens the installation.
      expect((await cli.run(['credential', 'list'])).code).toBe(0);
      // Step 3, then step 4: completes.
      running.child.kill('SIGTERM');
      expect(await running.exited).toBe(0);
      const restarted = await serve({ ...cli.env, TOLLGATE_MASTER_KEY: newKey }, dir);
      try {
        const done = await cli.json<{ completed: boolean }>(['master-key', 'rotate'], {
          env: { TOLLGATE_MASTER_KEY: newKey },
        });
        expect(done.completed).toBe(true);
        expect((await cli.run(['credential', 'list'])).stderr).toContain(
          'does not belong to this installation',
        );
      } finally {
        restarted.child.kill('SIGTERM');
        await restarted.exited;
      }
    } finally {
      if (running.child.exitCode === null) running.child.kill('SIGTERM');
      await running.exited;
    }
  });

  it('prints the new key once; the previous key works until the run with the new key completes it', async () => {
    const oldKey = generateMasterKeyText();
    const cli = await home({ TOLLGATE_MASTER_KEY: oldKey });
    expect((await cli.run(['init'])).code).toBe(0);
    const secrets = await addCredentials(cli, 3);

    const first = await cli.run(['master-key', 'rotate']);
    expect(first.code, first.stderr).toBe(0);
    const match = /^ {2}([A-Za-z0-9+/]{43}=)$/m.exec(first.stdout);
    expect(match).not.toBeNull();
    const newKey = match?.[1] ?? '';
    expect(first.stdout.split(newKey).length - 1).toBe(1);
    expect(first.stderr).not.toContain(newKey);
    expect(first.stdout).toContain('Run `tollgate master-key rotate` again with the new key');

    // Not completed: doctor says so; both keys open the installation and every secret.
    const doctor = async (env: Record<string, string> = {}) =>
      (await cli.run(['doctor', '--json'], { env })).stdout;
    const checkOf = (out: string) =>
      (JSON.parse(out) as Array<{ check: string; warning?: boolean; detail: string }>).find(
        (c) => c.check === 'master key',
      );
    expect(checkOf(await doctor())).toMatchObject({
      warning: true,
      detail: expect.stringContaining('with the new key'),
    });
    expect((await revealAll(cli)).secrets).toEqual(secrets);
    const withNew = await revealAll(cli, { TOLLGATE_MASTER_KEY: newKey });
    expect(withNew.secrets).toEqual(secrets);
    expect(withNew.versions).toEqual([2, 2, 2]);

    const done = await cli.json<Record<string, unknown>>(['master-key', 'rotate'], {
      env: { TOLLGATE_MASTER_KEY: newKey },
    });
    expect(done).toMatchObject({ completed: true, from_version: 1, to_version: 2 });
    expect(done.master_key).toBeUndefined();
    expect(checkOf(await doctor({ TOLLGATE_MASTER_KEY: newKey }))?.warning).toBeUndefined();
    expect((await revealAll(cli, { TOLLGATE_MASTER_KEY: newKey })).secrets).toEqual(secrets);
    const old = await cli.run(['credential', 'list']);
    expect(old.code).not.toBe(0);
    expect(old.stderr).toContain('does not belong to this installation');
    const verify = await cli.run(['audit', 'verify'], { env: { TOLLGATE_MASTER_KEY: newKey } });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    // The new key never reached the database in the clear.
    const db = readFileSync(join(cli.home, 'tollgate.db'));
    expect(db.includes(Buffer.from(newKey))).toBe(false);
    expect(db.includes(Buffer.from(newKey, 'base64'))).toBe(false);
  });
});
