// `tollgate master-key rotate` under load: a server serves requests through the gateway (the official
// SDK against the fake upstream) while `master-key rotate` runs as its own process and is killed
// with SIGKILL at several points (TOLLGATE_TEST_ROTATE_PAUSE_AFTER). After each kill every credential
// still decrypts (in a freshly opened installation, as a restarted server would), the server keeps
// answering and learns the new key, and a final run completes the rotation.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { type Installation, openInstallation } from '../../src/install/installation.js';
import { systemClock } from '../../src/lib/clock.js';
import { createServices } from '../../src/services.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { createPgSchema, PG_URL, type PgSchema } from '../helpers/pg.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tollgate.js');
const CREDENTIALS = 8;

function rotate(
  env: Record<string, string>,
  pauseAt?: string,
): Promise<{ code: number | null; out: string }> {
  const child: ChildProcess = spawn(process.execPath, [BIN, 'master-key', 'rotate'], {
    env: {
      PATH: process.env.PATH ?? '',
      ...env,
      ...(pauseAt ? { TOLLGATE_TEST_ROTATE_PAUSE_AFTER: pauseAt } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
    // kill -9 exactly where the command says it stopped.
    if (pauseAt && out.includes(`paused at ${pauseAt}`)) child.kill('SIGKILL');
  });
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => resolve({ code: code ?? (signal ? -9 : null), out })),
  );
}

const targets = [{ name: 'sqlite' }, ...(PG_URL ? [{ name: 'postgres' }] : [])];

describe.each(targets)('master-key rotate under load on $name', ({ name }) => {
  let h: Harness;
  let schema: PgSchema | null = null;
  let cliEnv: Record<string, string>;
  const secrets = new Map<string, string>();
  let stale: Installation;
  let load: { stop(): Promise<{ ok: number; failed: string[] }> };

  beforeAll(async () => {
    schema = name === 'postgres' && PG_URL ? await createPgSchema(PG_URL) : null;
    h = await startHarness({ env: schema ? { TOLLGATE_DATABASE_URL: schema.url } : {} });
    for (let i = 0; i < CREDENTIALS; i++) {
      const secret = canaryAnthropicKey();
      await h.services.credentials.add(h.admin, {
        name: `c${i}`,
        provider: 'anthropic',
        secret,
        validate: false,
      });
      secrets.set(`c${i}`, secret);
    }
    cliEnv = {
      TOLLGATE_HOME: h.config.home,
      TOLLGATE_UPSTREAM_URL: h.fake.url,
      ...(schema ? { TOLLGATE_DATABASE_URL: schema.url } : {}),
    };
    // A second process that opened the installation before the rotation and never restarts.
    stale = await openInstallation(await loadConfig({ env: cliEnv, cwd: h.config.home }));
    const client = h.client(await h.key(), { maxRetries: 0 });
    let stopped = false;
    let ok = 0;
    const failed: string[] = [];
    const worker = async () => {
      while (!stopped) {
        try {
          await client.messages.create({
            model: 'claude-haiku-4-5',
            max_tokens: 16,
            messages: [{ role: 'user', content: 'hi [[fake output_tokens=3]]' }],
          });
          ok++;
        } catch (error) {
          failed.push(String(error));
        }
      }
    };
    const workers = [worker(), worker()];
    load = {
      async stop() {
        stopped = true;
        await Promise.all(workers);
        return { ok, failed };
      },
    };
  }, 120_000);

  afterAll(async () => {
    await load?.stop();
    await stale?.close();
    await h?.close();
    await schema?.drop();
  });

  /** Every credential, from a freshly opened installation (a restarted server). */
  async function revealAll(env: Record<string, string> = {}): Promise<Map<string, string>> {
    const config = await loadConfig({ env: { ...cliEnv, ...env }, cwd: h.config.home });
    const installation = await openInstallation(config);
    try {
      const services = createServices(installation, config, systemClock);
      const out = new Map<string, string>();
      for (const n of secrets.keys()) out.set(n, await services.credentials.reveal(n));
      return out;
    } finally {
      await installation.close();
    }
  }

  async function versions(): Promise<number[]> {
    const rows = await h.installation.db.kysely.selectFrom('credentials').select('key_version').execute();
    return rows.map((r) => r.key_version).sort();
  }

  async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('survives kill -9 at each step, keeps serving, and completes on the last run', async () => {
    const keyFile = join(h.config.home, 'master.key');
    const oldKey = readFileSync(keyFile, 'utf8').trim();
    expect(await revealAll()).toEqual(secrets);

    // 1. Killed right after the start committed: meta names the new key, master.key is still the old.
    expect((await rotate(cliEnv, 'started')).code).toBe(-9);
    expect(readFileSync(keyFile, 'utf8').trim()).toBe(oldKey);
    expect(await revealAll()).toEqual(secrets);
    // The running server learns the new key from the change feed, then seals new secrets under it.
    await until('the server to learn key version 2', () => h.installation.master.version === 2);
    const mid = canaryAnthropicKey();
    await h.services.credentials.add(h.admin, {
      name: 'mid',
      provider: 'anthropic',
      secret: mid,
      validate: false,
    });
    secrets.set('mid', mid);
    expect(await revealAll()).toEqual(secrets);

    // 2. Killed after 3 re-wrapped records: master.key holds the new key, master.key.v1 the old one.
    expect((await rotate(cliEnv, '3')).code).toBe(-9);
    expect(readFileSync(keyFile, 'utf8').trim()).not.toBe(oldKey);
    expect(readFileSync(`${keyFile}.v1`, 'utf8').trim()).toBe(oldKey);
    const mixed = await versions();
    expect(mixed.filter((v) => v === 1).length).toBeGreaterThan(0);
    expect(mixed.filter((v) => v === 2).length).toBeGreaterThanOrEqual(4);
    expect(await revealAll()).toEqual(secrets);
    // The process that never restarted learns the new key at the first record that needs it.
    const staleServices = createServices(
      stale,
      await loadConfig({ env: cliEnv, cwd: h.config.home }),
      systemClock,
    );
    for (const [n, s] of secrets) expect(await staleServices.credentials.reveal(n)).toBe(s);
    expect(stale.master.version).toBe(2);

    // 3. Killed after every record was re-wrapped, before the completion.
    expect((await rotate(cliEnv, 'rewrapped')).code).toBe(-9);
    expect(new Set(await versions())).toEqual(new Set([2]));
    expect(await revealAll()).toEqual(secrets);
    // The server's credential pool reloads (a change) and decrypts the re-wrapped records.
    await h.services.credentials.disable(h.admin, 'mid');
    await h.services.credentials.enable(h.admin, 'mid');
    await h.refresh();

    // 4. The last run completes.
    const done = await rotate(cliEnv);
    expect(done.code, done.out).toBe(0);
    expect(done.out).toContain('Rotated the master key from version 1');
    expect(done.out).not.toContain(oldKey);
    expect(await revealAll()).toEqual(secrets);
    const newKey = readFileSync(keyFile, 'utf8').trim();
    // The new key alone opens every secret; the old key alone is refused.
    expect(await revealAll({ TOLLGATE_MASTER_KEY: newKey })).toEqual(secrets);
    await expect(revealAll({ TOLLGATE_MASTER_KEY: oldKey })).rejects.toMatchObject({
      code: 'master_key_invalid',
    });
    expect(existsSync(`${keyFile}.v1`)).toBe(true);

    // The audit chain verifies, in the server (its anchor key followed the rotation) and afresh.
    expect(await h.services.audit.verify()).toMatchObject({ ok: true });
    const fresh = await openInstallation(
      await loadConfig({ env: { ...cliEnv, TOLLGATE_MASTER_KEY: newKey }, cwd: h.config.home }),
    );
    try {
      expect(await createServices(fresh, h.config, systemClock).audit.verify()).toMatchObject({ ok: true });
    } finally {
      await fresh.close();
    }
    // The server kept serving throughout: no request failed.
    const { ok, failed } = await load.stop();
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(10);
    // …and still serves after the rotation, with the pool reloaded from the re-wrapped records.
    await h.refresh();
    const after = await h.client(await h.key({ user: 'bob' })).messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 16,
      messages: [{ role: 'user', content: 'after [[fake output_tokens=2]]' }],
    });
    expect(after.usage.output_tokens).toBe(2);
  }, 300_000);
});
