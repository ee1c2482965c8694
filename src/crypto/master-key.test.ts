import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AppError, isAppError } from '../lib/errors.js';
import {
  createMasterKeyFile,
  deriveKey,
  generateMasterKeyText,
  loadMasterKey,
  masterKeyCheck,
  parseMasterKey,
  verifyMasterKeyCheck,
} from './master-key.js';

const posix = process.platform !== 'win32';

function caught(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    if (isAppError(error)) return error;
    throw error;
  }
  throw new Error('expected an AppError');
}

async function caughtAsync(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (error) {
    if (isAppError(error)) return error;
    throw error;
  }
  throw new Error('expected an AppError');
}

describe('parseMasterKey', () => {
  const raw = randomBytes(32);

  it('accepts standard and url-safe base64 with surrounding whitespace', () => {
    const std = parseMasterKey(`  ${raw.toString('base64')}\n`, 'test');
    const url = parseMasterKey(raw.toString('base64url'), 'test');
    expect(std.key.equals(raw)).toBe(true);
    expect(url.key.equals(raw)).toBe(true);
    expect(std.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(url.fingerprint).toBe(std.fingerprint);
    expect(std.version).toBe(1);
    expect(parseMasterKey(raw.toString('base64'), 'test', 3).version).toBe(3);
  });

  it('refuses short keys with the byte count, never the key', () => {
    const short = randomBytes(16).toString('base64');
    const error = caught(() => parseMasterKey(short, 'TOLLGATE_MASTER_KEY'));
    expect(error.code).toBe('master_key_invalid');
    expect(error.message).toContain('TOLLGATE_MASTER_KEY: master key is 16 bytes; at least 32 are required');
    expect(error.message).not.toContain(short);
    expect(caught(() => parseMasterKey('   ', 'x')).message).toContain('0 bytes');
  });

  it('refuses long keys, including hex text', () => {
    const hex = randomBytes(32).toString('hex');
    const error = caught(() => parseMasterKey(hex, 'x'));
    expect(error.code).toBe('master_key_invalid');
    expect(error.message).toContain('must be exactly 32 bytes');
    expect(error.message).not.toContain(hex);
    expect(caught(() => parseMasterKey(randomBytes(33).toString('base64'), 'x')).message).toContain(
      '33 bytes',
    );
  });

  it('refuses text that is not base64', () => {
    for (const bad of ['not base64!', `${raw.toString('base64')}$`, 'a+b_', '====', 'ab=c']) {
      const error = caught(() => parseMasterKey(bad, 'x'));
      expect(error.code).toBe('master_key_invalid');
      expect(error.message).toContain('base64');
    }
  });

  it('refuses a non-canonical last character', () => {
    const text = raw.toString('base64'); // 43 chars + '=', last char carries 2 unused bits
    const last = text[42] ?? 'A';
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const tweaked = `${text.slice(0, 42)}${alphabet[(alphabet.indexOf(last) ^ 1) % 64]}=`;
    expect(caught(() => parseMasterKey(tweaked, 'x')).code).toBe('master_key_invalid');
  });

  it('refuses a bad version', () => {
    expect(caught(() => parseMasterKey(raw.toString('base64'), 'x', 0)).code).toBe('invalid_input');
  });
});

describe('derived keys and the key check', () => {
  const a = parseMasterKey(generateMasterKeyText(), 'a');
  const b = parseMasterKey(generateMasterKeyText(), 'b');

  it('derives distinct 32-byte keys per purpose and per master', () => {
    const anchor = deriveKey(a, 'audit-anchor');
    expect(anchor).toHaveLength(32);
    expect(anchor.equals(deriveKey(a, 'audit-anchor'))).toBe(true);
    expect(anchor.equals(deriveKey(a, 'key-check'))).toBe(false);
    expect(anchor.equals(deriveKey(b, 'audit-anchor'))).toBe(false);
    expect(anchor.equals(a.key)).toBe(false);
    expect(caught(() => deriveKey(a, '')).code).toBe('invalid_input');
  });

  it('verifies the check of the right key only', () => {
    const check = masterKeyCheck(a);
    expect(check).toMatch(/^[0-9a-f]{64}$/);
    expect(verifyMasterKeyCheck(a, check)).toBe(true);
    expect(verifyMasterKeyCheck(a, check.toUpperCase())).toBe(true);
    expect(verifyMasterKeyCheck(b, check)).toBe(false);
    expect(verifyMasterKeyCheck(a, '')).toBe(false);
    expect(verifyMasterKeyCheck(a, check.slice(0, 62))).toBe(false);
    expect(verifyMasterKeyCheck(a, `${check.slice(0, 63)}g`)).toBe(false);
  });

  it('generates 32-byte keys that differ', () => {
    expect(Buffer.from(generateMasterKeyText(), 'base64')).toHaveLength(32);
    expect(generateMasterKeyText()).not.toBe(generateMasterKeyText());
  });
});

describe('key files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-mk-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a 0600 key file that loads back', async () => {
    const path = join(dir, 'master.key');
    const created = await createMasterKeyFile(path);
    if (posix) expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['master.key']); // the temp file is gone
    const loaded = await loadMasterKey({ defaultFile: path });
    expect(loaded.key.equals(created.key)).toBe(true);
    expect((await readFile(path, 'utf8')).endsWith('\n')).toBe(true);
  });

  it('never overwrites an existing file', async () => {
    const path = join(dir, 'master.key');
    await writeFile(path, 'precious');
    const error = await caughtAsync(createMasterKeyFile(path));
    expect(error.code).toBe('conflict');
    expect(await readFile(path, 'utf8')).toBe('precious');
    expect(await readdir(dir)).toEqual(['master.key']);
  });

  it('prefers inline over file over the default file', async () => {
    const def = await createMasterKeyFile(join(dir, 'default.key'));
    const filePath = join(dir, 'mounted.key');
    const fileText = generateMasterKeyText();
    await writeFile(filePath, fileText, { mode: 0o644 }); // mounted secrets may be world-readable
    const inlineText = generateMasterKeyText();
    const defaultFile = join(dir, 'default.key');

    const inline = await loadMasterKey({ inline: inlineText, file: filePath, defaultFile });
    expect(inline.key.toString('base64')).toBe(inlineText);
    const fromFile = await loadMasterKey({ file: filePath, defaultFile, version: 2 });
    expect(fromFile.key.toString('base64')).toBe(fileText);
    expect(fromFile.version).toBe(2);
    expect((await loadMasterKey({ defaultFile })).key.equals(def.key)).toBe(true);
  });

  it('refuses an empty inline key instead of falling back', async () => {
    const defaultFile = join(dir, 'default.key');
    await createMasterKeyFile(defaultFile);
    const error = await caughtAsync(loadMasterKey({ inline: '', defaultFile }));
    expect(error.code).toBe('master_key_invalid');
  });

  it.runIf(posix)('refuses a default file readable by others, naming chmod 600', async () => {
    const path = join(dir, 'master.key');
    await createMasterKeyFile(path);
    await chmod(path, 0o640);
    const error = await caughtAsync(loadMasterKey({ defaultFile: path }));
    expect(error.code).toBe('master_key_invalid');
    expect(error.message).toContain(path);
    expect(error.message).toContain('chmod 600');
    expect(error.message).toContain('0640');
  });

  it('reports a missing key file with the way out', async () => {
    const path = join(dir, 'absent.key');
    const error = await caughtAsync(loadMasterKey({ defaultFile: path }));
    expect(error.code).toBe('master_key_invalid');
    expect(error.message).toMatch(/^no master key: .*tollgate init.*TOLLGATE_MASTER_KEY/);
    const explicit = await caughtAsync(loadMasterKey({ file: path, defaultFile: path }));
    expect(explicit.message).toContain('TOLLGATE_MASTER_KEY_FILE');
  });

  it('refuses a directory or an oversized file without echoing contents', async () => {
    expect((await caughtAsync(loadMasterKey({ file: dir, defaultFile: dir }))).code).toBe(
      'master_key_invalid',
    );
    const big = join(dir, 'big.key');
    const content = `${generateMasterKeyText()}\n`.repeat(200);
    await writeFile(big, content);
    const error = await caughtAsync(loadMasterKey({ file: big, defaultFile: big }));
    expect(error.message).toContain('too large');
    expect(error.message).not.toContain(content.slice(0, 44));
  });
});
