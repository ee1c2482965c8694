// The README's runbook blocks "Upgrade" and "Rotate the master key" (both ways of holding the key), run
// as written by bash against this checkout's compiled CLI, while a server spawned from it serves the
// official SDK through the fake upstream: requests keep being answered with the credential the vault
// decrypts, before, during and after each procedure.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMasterKeyText } from '../../src/crypto/master-key.js';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type CliResult, runCli } from '../helpers/cli.js';
import { listeningIn, readmeBlock, runBlock, type Served, serve, stopGroup } from '../helpers/runbook.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

let fake: FakeUpstream;
beforeAll(async () => {
  fake = await startFakeUpstream();
});
afterAll(async () => {
  await fake?.close();
});

const groups: number[] = [];
const dirs: string[] = [];
const servers: Served[] = [];
afterAll(async () => {
  for (const g of groups) await stopGroup(g);
  for (const s of servers) if (s.child.exitCode === null) s.child.kill('SIGTERM');
  await Promise.all(servers.map((s) => s.exited));
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** One answered request through the server at `url` with `key` (the upstream credential decrypted). */
async function answered(url: string, key: string): Promise<void> {
  const client = new Anthropic({ apiKey: key, baseURL: url, maxRetries: 0 });
  const reply = await client.messages.create({
    model: 'claude-haiku-4-5',
    max_tokens: 20,
    messages: [{ role: 'user', content: 'runbook' }],
  });
  expect(reply.type).toBe('message');
}

interface Installation {
  readonly dir: string;
  /** The home, `.tollgate` in dir (the directory the blocks run in). */
  readonly home: string;
  readonly env: Record<string, string>;
  run(argv: string[], env?: Record<string, string>, stdin?: string): Promise<CliResult>;
  readonly key: string;
}

/** An installation with an org credential and a gateway key, in a directory of its own. */
async function installation(extra: Record<string, string> = {}): Promise<Installation> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-runbook-'));
  dirs.push(dir);
  const home = join(dir, '.tollgate');
  const env: Record<string, string> = {
    TOLLGATE_HOME: home,
    TOLLGATE_TEST_CWD: dir,
    TOLLGATE_UPSTREAM_URL: fake.url,
    TOLLGATE_LOGGING_LEVEL: 'silent',
    ...extra,
  };
  const run = (argv: string[], more: Record<string, string> = {}, stdin = '') =>
    runCli(argv, { ...env, ...more }, stdin);
  expect((await run(['init'])).code).toBe(0);
  const added = await run(['credential', 'add', 'org', '--provider', 'anthropic'], {}, canaryAnthropicKey());
  expect(added.code, added.stderr).toBe(0);
  expect((await run(['user', 'add', 'alice'])).code).toBe(0);
  const issued = await run(['key', 'issue', '--user', 'alice', '--json']);
  const key = (JSON.parse(issued.stdout) as { key: string }).key;
  return { dir, home, env, run, key };
}

async function started(env: Record<string, string>, dir: string): Promise<Served> {
  const s = await serve(env, dir);
  servers.push(s);
  return s;
}

describe('the README operations runbook', () => {
  it('upgrades as written (back up, SIGTERM drains to exit 0, start), then rotates the home key file while serving', {
    timeout: 180_000,
  }, async () => {
    const { dir, home, env, run, key } = await installation();
    const old = await started(env, dir);
    await answered(old.url, key);

    const upgrade = await runBlock(await readmeBlock('upgrade'), dir, {
      ...env,
      PID: String(old.child.pid),
    });
    groups.push(upgrade.group);
    expect(upgrade.code, upgrade.out).toBe(0);
    expect(await old.exited).toBe(0);
    expect((await readdir(join(dir, 'backups'))).includes('before-upgrade.tgbak')).toBe(true);
    const url = await listeningIn(join(dir, 'tollgate.log'));
    await answered(url, key);

    // The server started by the upgrade keeps serving through the rotation: it learns the new key.
    const before = await run(['backup', '--out', 'backups/before-rotation.tgbak']);
    expect(before.code, before.stderr).toBe(0);
    const rotate = await runBlock(await readmeBlock('rotate the home key file'), dir, env);
    expect(rotate.code, rotate.out).toBe(0);
    expect(rotate.out).toMatch(/Rotated the master key from version 1 .* to version 2/);
    await answered(url, key);
    // The previous key moved out of the home, beside the backups it opens.
    expect((await readdir(home)).filter((f) => f.startsWith('master.key.v'))).toEqual([]);
    const kept = await readdir(join(dir, 'old-keys'));
    expect(kept).toEqual([expect.stringMatching(/^master\.key\.v1$/)]);
    // A server restarted on the new key serves; the backup from before opens with the kept key only.
    stopGroup(upgrade.group);
    const next = await started(env, dir);
    await answered(next.url, key);
    const restoredHome = join(dir, 'restored');
    const restore = (keyFile: string) =>
      run(['restore', 'backups/before-rotation.tgbak'], {
        TOLLGATE_HOME: restoredHome,
        TOLLGATE_MASTER_KEY_FILE: keyFile,
      });
    const refused = await restore(join(home, 'master.key'));
    expect(refused.code).not.toBe(0);
    await rm(restoredHome, { recursive: true, force: true });
    const restored = await restore(join(dir, 'old-keys', 'master.key.v1'));
    expect(restored.code, restored.stderr).toBe(0);
  });

  it('rotates a key supplied by TOLLGATE_MASTER_KEY_FILE as written: new key to the file, restart, complete', {
    timeout: 180_000,
  }, async () => {
    const keyDir = await mkdtemp(join(tmpdir(), 'tollgate-runbook-secrets-'));
    dirs.push(keyDir);
    const keyFile = join(keyDir, 'master.key');
    await writeFile(keyFile, `${generateMasterKeyText()}\n`, { mode: 0o600 });
    const { dir, env, run, key } = await installation({ TOLLGATE_MASTER_KEY_FILE: keyFile });
    const first = await started(env, dir);
    await answered(first.url, key);
    const previous = await readFile(keyFile, 'utf8');

    const steps12 = await runBlock(await readmeBlock('rotate a supplied key file, steps 1-2'), dir, env);
    expect(steps12.code, steps12.out).toBe(0);
    // The new key went to the file only: not to the block's output.
    const current = (await readFile(keyFile, 'utf8')).trim();
    expect(current).not.toBe(previous.trim());
    expect(current).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(steps12.out).not.toContain(current);
    expect((await readFile(join(dir, 'old-keys', 'master.key.previous'), 'utf8')).trim()).toBe(
      previous.trim(),
    );
    // Still serving on the previous key, during the rotation.
    await answered(first.url, key);

    // Step 3: restart, one process at a time, now with the new key in the file.
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const second = await started(env, dir);
    await answered(second.url, key);

    const step4 = await runBlock(await readmeBlock('rotate a supplied key file, step 4'), dir, env);
    expect(step4.code, step4.out).toBe(0);
    await answered(second.url, key);
    // From then on the previous key no longer opens the installation; the new one does.
    const withPrevious = await run(['user', 'list'], {
      TOLLGATE_MASTER_KEY_FILE: join(dir, 'old-keys', 'master.key.previous'),
    });
    expect(withPrevious.code).not.toBe(0);
    expect(withPrevious.stderr).toMatch(/does not belong to this installation/);
    expect((await run(['user', 'list'])).code).toBe(0);
  });
});
