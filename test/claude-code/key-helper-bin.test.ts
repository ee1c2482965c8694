// The key helper as Claude Code runs it: `node bin/tollgate.js claude-code key-helper` in a child process
// (compiled dist/, as `npm test` builds it first), reading the file fallback under XDG_CONFIG_HOME.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyStore, type Keychain } from '../../src/claude-code/key-store.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(REPO, 'bin', 'tollgate.js');
const KEY = 'tg_5xQ0eKJm0yWl1F9d6r3ZpVbNc7uTg2sHa4oLi8kEfYwRtUyIqP';

const run = (args: string[], env: Record<string, string>) =>
  promisify(execFile)(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({
      code: error.code,
      stdout: error.stdout,
      stderr: error.stderr,
    }),
  );

const noKeychain: Keychain = {
  get: async () => null,
  set: async () => {
    throw new Error('no keychain in tests');
  },
  remove: async () => undefined,
  accounts: async () => [],
};

describe('key helper (bin, child process)', () => {
  let cfg: string;
  beforeAll(async () => {
    cfg = await mkdtemp(join(tmpdir(), 'tollgate-kh-'));
    await createKeyStore({ mode: 'file', configDir: join(cfg, 'tollgate'), keychain: noKeychain }).save(
      'alice',
      KEY,
    );
  });
  afterAll(() => rm(cfg, { recursive: true, force: true }));

  it('prints only the key and a newline from the file fallback', async () => {
    for (const store of ['file', 'auto']) {
      const result = await run(['claude-code', 'key-helper', '--profile', 'alice'], {
        XDG_CONFIG_HOME: cfg,
        HOME: cfg,
        TOLLGATE_KEY_STORE: store,
      });
      expect(result).toEqual({ code: 0, stdout: `${KEY}\n`, stderr: '' });
    }
    const only = await run(['claude-code', 'key-helper'], {
      XDG_CONFIG_HOME: cfg,
      HOME: cfg,
      TOLLGATE_KEY_STORE: 'file',
    });
    expect(only.stdout).toBe(`${KEY}\n`);
  });

  it('exits non-zero with a message on stderr when no key is stored', async () => {
    const result = await run(['claude-code', 'key-helper', '--profile', 'bob'], {
      XDG_CONFIG_HOME: cfg,
      HOME: cfg,
      TOLLGATE_KEY_STORE: 'file',
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(
      /^error: no Tollgate key stored for profile bob: run `tollgate claude-code setup/,
    );
  });

  it('loads only the key store: no commander, kysely, fastify or other packages', async () => {
    const seen = new Set<string>();
    const staticPackages = new Set<string>();
    const lazyPackages = new Set<string>();
    const visit = async (file: string): Promise<void> => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = await readFile(file, 'utf8');
      for (const [, eager, lazy] of text.matchAll(
        /(?:^|\n)\s*import\s[^'"]*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]/g,
      )) {
        const spec = eager ?? lazy ?? '';
        if (spec.startsWith('.')) await visit(resolve(dirname(file), spec));
        else (eager ? staticPackages : lazyPackages).add(spec);
      }
    };
    await visit(join(REPO, 'dist', 'claude-code', 'key-helper-main.js'));
    expect([...staticPackages].filter((p) => !p.startsWith('node:'))).toEqual([]);
    // The native keyring is imported only when a keychain is actually consulted.
    expect([...lazyPackages]).toEqual(['@napi-rs/keyring']);
    expect([...seen].map((f) => f.slice(REPO.length + 1)).sort()).toEqual([
      'dist/claude-code/key-helper-main.js',
      'dist/claude-code/key-helper.js',
      'dist/claude-code/key-store.js',
      'dist/lib/errors.js',
      'dist/lib/validate.js',
    ]);
  });
});
