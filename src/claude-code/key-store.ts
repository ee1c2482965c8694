// Where a person's gateway keys live on their own machine: the OS keychain (service `tollgate`, account =
// profile), or a 0600 file under $XDG_CONFIG_HOME/tollgate/keys (else ~/.config/tollgate/keys) when no
// keychain service exists, e.g. on headless Linux. Imported by the key helper's fast path, so it loads
// nothing heavy: node built-ins, and the native keyring module only when a keychain is actually used.
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, open, readdir, readFile, realpath, rename, rm } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { AppError } from '../lib/errors.js';
import { validateName } from '../lib/validate.js';

export const KEYCHAIN_SERVICE = 'tollgate';
export const KEY_STORE_MODES = ['auto', 'keychain', 'file'] as const;
export type KeyStoreMode = (typeof KEY_STORE_MODES)[number];

/** The OS keychain, as far as Tollgate needs it; injectable so the fallback can be tested anywhere. */
export interface Keychain {
  get(account: string): Promise<string | null>;
  set(account: string, secret: string): Promise<void>;
  remove(account: string): Promise<void>;
  accounts(): Promise<string[]>;
}

export interface StoredKey {
  readonly key: string;
  readonly where: 'keychain' | 'file';
  /** Human-readable place, never the key. */
  readonly location: string;
}

export interface SaveResult {
  readonly where: 'keychain' | 'file';
  readonly location: string;
  /** Why the file was used in auto mode (the keychain's error), if it was. */
  readonly fallbackReason?: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** TOLLGATE_KEY_STORE: auto (keychain, else file), keychain (only), file (only). */
export function keyStoreModeOf(env: Env): KeyStoreMode {
  const value = env.TOLLGATE_KEY_STORE?.trim() || 'auto';
  const mode = KEY_STORE_MODES.find((m) => m === value);
  if (!mode)
    throw new AppError('invalid_config', `TOLLGATE_KEY_STORE must be one of ${KEY_STORE_MODES.join(', ')}`);
  return mode;
}

/** $XDG_CONFIG_HOME/tollgate, else ~/.config/tollgate. A relative XDG_CONFIG_HOME is ignored, as the spec says. */
export function configDirOf(env: Env, homedir: () => string): string {
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'tollgate');
  return join(env.HOME || homedir(), '.config', 'tollgate');
}

const location = {
  keychain: (profile: string) => `the OS keychain (service ${KEYCHAIN_SERVICE}, account ${profile})`,
  file: (dir: string, profile: string) => join(dir, `${profile}.key`),
};

export function createKeyStore(options: { mode: KeyStoreMode; configDir: string; keychain: Keychain }) {
  const { mode, keychain } = options;
  const keysDir = join(options.configDir, 'keys');
  const fileOf = (profile: string) => location.file(keysDir, validateName('profile', profile));

  /** Stores `key` for `profile`; `outside` is a directory the file must not be in (the project). */
  async function save(profile: string, key: string, outside?: string): Promise<SaveResult> {
    validateName('profile', profile);
    if (mode !== 'file') {
      try {
        await keychain.set(profile, key);
        // Read it back: some stores accept a secret that no later process can read.
        if ((await keychain.get(profile)) !== key)
          throw new Error('the keychain did not return the stored key');
        // A file left by an earlier fallback would shadow the keychain entry; it is stale now.
        await rm(fileOf(profile), { force: true });
        return { where: 'keychain', location: location.keychain(profile) };
      } catch (error) {
        if (mode === 'keychain') throw keychainError(error);
        const written = await writeKeyFile(profile, key, outside);
        return { ...written, fallbackReason: reasonOf(error) };
      }
    }
    return writeKeyFile(profile, key, outside);
  }

  async function writeKeyFile(profile: string, key: string, outside?: string): Promise<SaveResult> {
    const file = fileOf(profile);
    if (outside !== undefined && (await isInside(keysDir, outside))) {
      throw new AppError(
        'invalid_input',
        `the key file ${file} would be inside the project ${outside}; set XDG_CONFIG_HOME to a directory outside the project`,
      );
    }
    await mkdir(options.configDir, { recursive: true, mode: 0o700 });
    await mkdir(keysDir, { recursive: true, mode: 0o700 });
    const dirStat = await lstat(keysDir);
    if (!dirStat.isDirectory())
      throw new AppError('invalid_input', `${keysDir} must be a directory (not a symbolic link)`);
    await chmod(keysDir, 0o700);
    // Write a temp file and rename it over the old one: a reader never sees a half-written key.
    const temp = join(keysDir, `.${profile}.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(`${key}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temp, file);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    return { where: 'file', location: file };
  }

  async function readKeyFile(profile: string): Promise<StoredKey | null> {
    const file = fileOf(profile);
    const stat = await lstat(file).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (stat === null) return null;
    if (!stat.isFile()) throw new AppError('invalid_input', `${file} must be a regular file`);
    // Like the master key file: a key others can read is refused rather than used.
    if ((stat.mode & 0o077) !== 0) {
      throw new AppError(
        'invalid_input',
        `${file} is readable by other users (mode ${(stat.mode & 0o777).toString(8)}); run chmod 600 ${file}`,
      );
    }
    const key = (await readFile(file, 'utf8')).trim();
    return key === '' ? null : { key, where: 'file', location: file };
  }

  /**
   * The stored key of `profile`, or null. The file is read first: it is cheap, and it only exists when
   * the keychain was unavailable at the last save (a keychain save deletes it), so it is never stale.
   */
  async function load(profile: string): Promise<StoredKey | null> {
    if (mode !== 'keychain') {
      const fromFile = await readKeyFile(profile);
      if (fromFile || mode === 'file') return fromFile;
    }
    try {
      const key = await keychain.get(profile);
      return key ? { key, where: 'keychain', location: location.keychain(profile) } : null;
    } catch (error) {
      if (mode === 'keychain') throw keychainError(error);
      return null;
    }
  }

  /** Profiles with a stored key, sorted. */
  async function profiles(): Promise<string[]> {
    const found = new Set<string>();
    if (mode !== 'keychain') {
      const names = await readdir(keysDir).catch(() => [] as string[]);
      for (const name of names)
        if (/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\.key$/.test(name)) found.add(name.slice(0, -4));
    }
    if (mode !== 'file') {
      const accounts = await keychain.accounts().catch((error: unknown) => {
        if (mode === 'keychain') throw keychainError(error);
        return [] as string[];
      });
      for (const account of accounts) found.add(account);
    }
    return [...found].sort();
  }

  /** Where a save would go, for --dry-run. */
  function describe(profile: string): string {
    if (mode === 'keychain') return location.keychain(profile);
    if (mode === 'file') return location.file(keysDir, profile);
    return `${location.keychain(profile)}, or ${location.file(keysDir, profile)} (mode 0600) if no keychain is available`;
  }

  return { save, load, profiles, describe, mode };
}

export type KeyStore = ReturnType<typeof createKeyStore>;

function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]?.slice(0, 200) ?? 'unavailable';
}

function keychainError(error: unknown): AppError {
  return new AppError(
    'invalid_config',
    `the OS keychain is not available (${reasonOf(error)}); set TOLLGATE_KEY_STORE=file to keep the key in a 0600 file instead`,
    {},
    { cause: error },
  );
}

/** Whether `dir` is `parent` or below it, comparing real paths where they exist (symlinked temp dirs). */
async function isInside(dir: string, parent: string): Promise<boolean> {
  const rel = relative(await realish(parent), await realish(dir));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** realpath of the nearest existing ancestor, with the rest appended. */
async function realish(path: string): Promise<string> {
  const absolute = resolve(path);
  try {
    return await realpath(absolute);
  } catch {
    const parent = dirname(absolute);
    return parent === absolute ? absolute : join(await realish(parent), absolute.slice(parent.length));
  }
}

/**
 * The keychain of this platform through @napi-rs/keyring, loaded on first use. On Linux the entry is
 * pinned to the Secret Service: the library's fallback, the kernel keyring, is per login session and
 * lost at reboot (a key stored there was unreadable from the next process in our tests), so a headless
 * machine should get the file instead.
 */
export function nativeKeychain(platform: NodeJS.Platform): Keychain {
  const entryOptions = platform === 'linux' ? { linux: { store: 'secret-service' as const } } : undefined;
  const load = () => import('@napi-rs/keyring');
  const entry = async (account: string) =>
    new (await load()).AsyncEntry(KEYCHAIN_SERVICE, account, entryOptions);
  return {
    get: async (account) => (await entry(account)).getPassword(),
    set: async (account, secret) => (await entry(account)).setPassword(secret),
    remove: async (account) => {
      await (await entry(account)).deletePassword();
    },
    accounts: async () => (await (await load()).findCredentialsAsync(KEYCHAIN_SERVICE)).map((c) => c.account),
  };
}
