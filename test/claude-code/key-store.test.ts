// The key store: keychain first, a 0600 file in the person's config dir when there is no keychain.
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runKeyHelper } from '../../src/claude-code/key-helper.js';
import {
  configDirOf,
  createKeyStore,
  type Keychain,
  keyStoreModeOf,
} from '../../src/claude-code/key-store.js';

const KEY = 'tg_0123456789abcdefghijABCDEFGHIJ0123456789abcdefghij';

/** An in-memory keychain, or one that fails like a headless Linux box without a Secret Service. */
function memoryKeychain(): Keychain & { entries: Map<string, string> } {
  const entries = new Map<string, string>();
  return {
    entries,
    get: async (a) => entries.get(a) ?? null,
    set: async (a, s) => void entries.set(a, s),
    remove: async (a) => void entries.delete(a),
    accounts: async () => [...entries.keys()],
  };
}
const noKeychain: Keychain = {
  get: async () => {
    throw new Error('Platform failure: DBus error: no session bus');
  },
  set: async () => {
    throw new Error('Platform failure: DBus error: no session bus');
  },
  remove: async () => undefined,
  accounts: async () => {
    throw new Error('no session bus');
  },
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tollgate-ks-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('key store', () => {
  it('picks the config dir from XDG_CONFIG_HOME (absolute only), else ~/.config', () => {
    expect(configDirOf({ XDG_CONFIG_HOME: '/x/cfg', HOME: '/home/a' }, () => '/nope')).toBe(
      '/x/cfg/tollgate',
    );
    expect(configDirOf({ XDG_CONFIG_HOME: 'rel', HOME: '/home/a' }, () => '/nope')).toBe(
      '/home/a/.config/tollgate',
    );
    expect(configDirOf({}, () => '/home/b')).toBe('/home/b/.config/tollgate');
    expect(keyStoreModeOf({})).toBe('auto');
    expect(keyStoreModeOf({ TOLLGATE_KEY_STORE: 'file' })).toBe('file');
    expect(() => keyStoreModeOf({ TOLLGATE_KEY_STORE: 'vault' })).toThrow(/auto, keychain, file/);
  });

  it('auto: uses the keychain when it works, and removes a stale fallback file', async () => {
    const keychain = memoryKeychain();
    const configDir = join(dir, 'cfg');
    await createKeyStore({ mode: 'file', configDir, keychain }).save('alice', 'tg_old');
    const store = createKeyStore({ mode: 'auto', configDir, keychain });
    expect(await store.save('alice', KEY)).toEqual({
      where: 'keychain',
      location: 'the OS keychain (service tollgate, account alice)',
    });
    expect(keychain.entries.get('alice')).toBe(KEY);
    await expect(stat(join(configDir, 'keys', 'alice.key'))).rejects.toThrow(/ENOENT/);
    expect(await store.load('alice')).toMatchObject({ key: KEY, where: 'keychain' });
    expect(await store.profiles()).toEqual(['alice']);
  });

  it('auto: falls back to a 0600 file in a 0700 dir when no keychain service exists', async () => {
    const configDir = join(dir, 'cfg');
    const store = createKeyStore({ mode: 'auto', configDir, keychain: noKeychain });
    const saved = await store.save('alice', KEY);
    expect(saved).toMatchObject({ where: 'file', location: join(configDir, 'keys', 'alice.key') });
    expect(saved.fallbackReason).toContain('DBus');
    expect((await stat(saved.location)).mode & 0o777).toBe(0o600);
    expect((await stat(join(configDir, 'keys'))).mode & 0o777).toBe(0o700);
    expect(await readFile(saved.location, 'utf8')).toBe(`${KEY}\n`);
    expect(await store.load('alice')).toMatchObject({ key: KEY, where: 'file' });
    expect(await store.load('bob')).toBeNull();
    expect(await store.profiles()).toEqual(['alice']);
  });

  it('keychain mode refuses to fall back, saying how to choose the file', async () => {
    const store = createKeyStore({ mode: 'keychain', configDir: join(dir, 'cfg'), keychain: noKeychain });
    await expect(store.save('alice', KEY)).rejects.toThrow(/TOLLGATE_KEY_STORE=file/);
  });

  it('never puts the key file inside the project, and refuses a key file others can read', async () => {
    const project = join(dir, 'project');
    await mkdir(project);
    const inside = createKeyStore({
      mode: 'file',
      configDir: join(project, '.config', 'tollgate'),
      keychain: noKeychain,
    });
    await expect(inside.save('alice', KEY, project)).rejects.toThrow(/inside the project/);
    await expect(stat(join(project, '.config'))).rejects.toThrow(/ENOENT/);

    const store = createKeyStore({ mode: 'file', configDir: join(dir, 'cfg'), keychain: noKeychain });
    const { location } = await store.save('alice', KEY, project);
    await chmod(location, 0o644);
    await expect(store.load('alice')).rejects.toThrow(/readable by other users.*chmod 600/);
  });

  it('overwrites atomically and validates profile names', async () => {
    const store = createKeyStore({ mode: 'file', configDir: join(dir, 'cfg'), keychain: noKeychain });
    await store.save('alice', 'tg_first');
    await store.save('alice', KEY);
    expect((await store.load('alice'))?.key).toBe(KEY);
    await expect(store.save('../evil', KEY)).rejects.toThrow(/profile name/);
  });
});

describe('key helper (in-process)', () => {
  const run = async (args: string[], env: Record<string, string>) => {
    let stdout = '';
    let stderr = '';
    const code = await runKeyHelper(
      args,
      {
        stdout: { write: (t: string) => (stdout += t) },
        stderr: { write: (t: string) => (stderr += t) },
        env,
      },
      noKeychain,
    );
    return { code, stdout, stderr };
  };

  it('prints only the key, picks the only profile, and explains what to do when none is stored', async () => {
    const env = { XDG_CONFIG_HOME: dir, TOLLGATE_KEY_STORE: 'auto' };
    expect(await run(['--profile', 'alice'], env)).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'error: no Tollgate key stored for profile alice: run `tollgate claude-code setup --server URL --code CODE` (ask your Tollgate admin for a code)\n',
    });
    await mkdir(join(dir, 'tollgate', 'keys'), { recursive: true, mode: 0o700 });
    await writeFile(join(dir, 'tollgate', 'keys', 'alice.key'), `${KEY}\n`, { mode: 0o600 });
    expect(await run(['--profile=alice'], env)).toEqual({ code: 0, stdout: `${KEY}\n`, stderr: '' });
    expect(await run([], env)).toEqual({ code: 0, stdout: `${KEY}\n`, stderr: '' });
    await writeFile(join(dir, 'tollgate', 'keys', 'bob.key'), `${KEY}\n`, { mode: 0o600 });
    expect((await run([], env)).stderr).toContain('several profiles (alice, bob)');
    expect((await run(['--bogus'], env)).code).toBe(2);
  });
});
