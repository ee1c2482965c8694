// `tollgate coder bootstrap` and `tollgate claude-code settings` through the CLI, in-process, with the
// file key store in a temp config dir (TOLLGATE_KEY_STORE=file, XDG_CONFIG_HOME).
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { databaseDigest } from '../helpers/snapshot.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const HELPER = (profile: string) =>
  `'${process.execPath}' '${join(REPO, 'bin', 'tollgate.js')}' claude-code key-helper --profile ${profile}`;

const CONFIG = `
server: { public_url: https://tollgate.example.com }
claude:
  default_model: claude-sonnet-4-6
  models_allowed: [claude-sonnet-4-6, claude-haiku-4-5]
  max_monthly_spend_usd: 500
  per_coder_monthly_limit_usd: 100
claude_code:
  deny: ["Read(./.env)", "Read(./.env.*)", "Read(./**/*.sql)"]
`;

interface KeyJson {
  id: string;
  name: string | null;
  status: string;
  models: string[] | null;
}

describe('coder bootstrap', () => {
  let cli: CliHome;
  let root: string;
  let cfg: string;
  let env: Record<string, string>;
  const project = () => join(root, 'project');
  const settingsFile = () => join(project(), '.claude', 'settings.json');
  const keyFile = (profile: string) => join(cfg, 'tollgate', 'keys', `${profile}.key`);

  beforeAll(async () => {
    cli = await tempHome();
    root = dirname(cli.home);
    await mkdir(cli.home, { mode: 0o700 });
    await writeFile(join(cli.home, 'tollgate.yml'), CONFIG);
    expect((await cli.run(['init'])).code).toBe(0);
    cfg = await mkdtemp(join(tmpdir(), 'tollgate-cfg-'));
    env = { TOLLGATE_KEY_STORE: 'file', XDG_CONFIG_HOME: cfg };
    await mkdir(join(project(), '.claude'), { recursive: true });
    await writeFile(
      settingsFile(),
      JSON.stringify({
        env: { DISABLE_TELEMETRY: '1' },
        permissions: {
          allow: ['Bash(npm test)'],
          ask: ['Bash(git push *)'],
          deny: ['Read(./secrets/**)', 'Read(./.env)'],
        },
        statusLine: { type: 'command', command: 'echo hi' },
      }),
    );
  });
  afterAll(async () => {
    await cli.cleanup();
    await rm(cfg, { recursive: true, force: true });
  });

  it('--dry-run prints the diff and what would be created, and changes nothing', async () => {
    const dbFile = join(cli.home, 'tollgate.db');
    const before = { db: databaseDigest(dbFile), settings: await readFile(settingsFile(), 'utf8') };
    const result = await cli.run(['coder', 'bootstrap', 'alice', '--project', project(), '--dry-run'], {
      env,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('Dry run: nothing was changed.');
    expect(result.stdout).toContain('Would create user alice (member) with a monthly budget of $100.00.');
    expect(result.stdout).toContain(
      `Would issue a gateway key named claude-code and store it in ${keyFile('alice')}.`,
    );
    expect(result.stdout).toContain(`--- ${settingsFile()}\n+++ ${settingsFile()}\n@@ `);
    expect(result.stdout).toContain('+    "ANTHROPIC_BASE_URL": "https://tollgate.example.com"');
    expect(databaseDigest(dbFile)).toBe(before.db);
    expect(await readFile(settingsFile(), 'utf8')).toBe(before.settings);
    await expect(stat(join(cfg, 'tollgate'))).rejects.toThrow(/ENOENT/);
  });

  it('creates the user, issues and stores the key, and writes exactly the merged settings', async () => {
    const result = await cli.run(['coder', 'bootstrap', 'alice', '--project', project()], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('Created user alice (member) with a monthly budget of $100.00.');
    expect(result.stdout).toContain("alice's monthly limit: $100.00 (org cap: $500.00).");
    expect(result.stdout).toContain(`stored in ${keyFile('alice')}`);

    const text = await readFile(settingsFile(), 'utf8');
    expect(JSON.parse(text)).toEqual({
      env: { DISABLE_TELEMETRY: '1', ANTHROPIC_BASE_URL: 'https://tollgate.example.com' },
      permissions: {
        allow: ['Bash(npm test)'],
        ask: ['Bash(git push *)'],
        deny: ['Read(./secrets/**)', 'Read(./.env)', 'Read(./.env.*)', 'Read(./**/*.sql)'],
      },
      statusLine: { type: 'command', command: 'echo hi' },
      apiKeyHelper: HELPER('alice'),
      model: 'claude-sonnet-4-6',
    });
    expect(text).not.toContain('tg_');

    const key = (await readFile(keyFile('alice'), 'utf8')).trim();
    expect(key).toMatch(/^tg_[0-9A-Za-z]{49}$/);
    expect((await stat(keyFile('alice'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(cfg, 'tollgate', 'keys'))).mode & 0o777).toBe(0o700);
    expect(relative(project(), keyFile('alice')).startsWith('..')).toBe(true);
    // The key is never printed: it went straight into the key store.
    expect(cli.transcript()).not.toContain(key);

    const keys = await cli.json<KeyJson[]>(['key', 'list', '--user', 'alice']);
    expect(keys).toMatchObject([
      { name: 'claude-code', status: 'active', models: ['claude-sonnet-4-6', 'claude-haiku-4-5'] },
    ]);
    expect(await cli.json(['user', 'show', 'alice'])).toMatchObject({
      role: 'member',
      monthly_budget_usd: '100.00',
    });
  });

  it('is idempotent: the same key is kept and the file is left byte-for-byte as it was', async () => {
    const settings = await readFile(settingsFile());
    const { mtimeMs } = await stat(settingsFile());
    const key = await readFile(keyFile('alice'));
    const result = await cli.run(['coder', 'bootstrap', 'alice', '--project', project()], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('User alice already exists.');
    expect(result.stdout).toMatch(/Kept the stored key key_\w+ \(tg_…\w{4}\)/);
    expect(result.stdout).toContain('is already up to date.');
    expect(await readFile(settingsFile())).toEqual(settings);
    expect((await stat(settingsFile())).mtimeMs).toBe(mtimeMs);
    expect(await readFile(keyFile('alice'))).toEqual(key);
    expect(await cli.json<KeyJson[]>(['key', 'list', '--user', 'alice'])).toHaveLength(1);
  });

  it('issues a new key when the stored one was revoked', async () => {
    const [old] = await cli.json<KeyJson[]>(['key', 'list', '--user', 'alice']);
    await cli.json(['key', 'revoke', old?.id ?? '']);
    const result = await cli.json<{ key: { action: string; id: string } }>(
      ['coder', 'bootstrap', 'alice', '--project', project()],
      { env },
    );
    expect(result.key.action).toBe('issued');
    expect(result.key.id).not.toBe(old?.id);
  });

  it('takes --monthly-budget and --model for a new coder, and refuses a budget above the org cap', async () => {
    const dbFile = join(cli.home, 'tollgate.db');
    const before = databaseDigest(dbFile);
    const refused = await cli.run(
      ['coder', 'bootstrap', 'bob', '--project', project(), '--monthly-budget', '600'],
      {
        env,
      },
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      'error: a monthly budget of $600.00 is above the org cap claude.max_monthly_spend_usd ($500.00)\n',
    );
    const badModel = await cli.run(['coder', 'bootstrap', 'bob', '--model', 'claude-opus-4-6'], { env });
    expect(badModel.stderr).toMatch(/claude-opus-4-6 is not in claude.models_allowed/);
    expect(databaseDigest(dbFile)).toBe(before);

    const other = join(root, 'other');
    const ok = await cli.run(
      [
        'coder',
        'bootstrap',
        'bob',
        '--project',
        other,
        '--monthly-budget',
        '25',
        '--model',
        'claude-haiku-4-5',
      ],
      { env },
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("bob's monthly limit: $25.00");
    expect(JSON.parse(await readFile(join(other, '.claude', 'settings.json'), 'utf8'))).toEqual({
      env: { ANTHROPIC_BASE_URL: 'https://tollgate.example.com' },
      apiKeyHelper: HELPER('bob'),
      model: 'claude-haiku-4-5',
      permissions: { deny: ['Read(./.env)', 'Read(./.env.*)', 'Read(./**/*.sql)'] },
    });
  });

  it('refuses a malformed settings file before creating anything', async () => {
    const broken = join(root, 'broken');
    await mkdir(join(broken, '.claude'), { recursive: true });
    await writeFile(join(broken, '.claude', 'settings.json'), '{"env": {');
    const result = await cli.run(['coder', 'bootstrap', 'carol', '--project', broken], { env });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/settings.json is not valid JSON .*nothing was changed/);
    expect((await cli.run(['user', 'show', 'carol'])).code).toBe(1);
  });

  it('--enroll creates the user and a one-time code, writes no files and issues no key yet', async () => {
    const result = await cli.run(
      ['coder', 'bootstrap', 'dave', '--enroll', '--project', join(root, 'none')],
      { env },
    );
    expect(result.code, result.stderr).toBe(0);
    const code = /\b(ENR(?:-[0-9A-Z]{4}){4})\b/.exec(result.stdout)?.[1];
    expect(code).toBeDefined();
    expect(result.stdout).toContain(
      `tollgate claude-code setup --server https://tollgate.example.com --code ${code}`,
    );
    await expect(stat(join(root, 'none'))).rejects.toThrow(/ENOENT/);
    await expect(stat(keyFile('dave'))).rejects.toThrow(/ENOENT/);
    expect(await cli.json(['key', 'list', '--user', 'dave'])).toEqual([]);
    // The code passes the argv guard (it does not look like a tg_/sk-ant secret).
    const setup = await cli.run(
      ['claude-code', 'setup', '--server', 'http://127.0.0.1:9', '--code', code ?? ''],
      {
        env,
      },
    );
    expect(setup.stderr).not.toMatch(/looks like a secret/);
    expect(setup.stderr).toMatch(/cannot reach http:\/\/127.0.0.1:9/);
  });

  it('claude-code setup refuses plain http to another host, saying why', async () => {
    const result = await cli.run(
      [
        'claude-code',
        'setup',
        '--server',
        'http://tollgate.example.com',
        '--code',
        'ENR-AAAA-AAAA-AAAA-AAAA',
      ],
      { env },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/refusing plain http:\/\/ to tollgate.example.com: .*gateway key.*https/);
  });

  it('claude-code settings writes the same settings to a project or a managed file, merged', async () => {
    const managed = join(root, 'etc', 'claude-code', 'managed-settings.json');
    await mkdir(dirname(managed), { recursive: true });
    await writeFile(
      managed,
      JSON.stringify({ permissions: { deny: ['Bash(curl *)'] }, cleanupPeriodDays: 7 }),
    );
    const result = await cli.run(['claude-code', 'settings', '--user', 'alice', '--managed', managed], {
      env,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(await readFile(managed, 'utf8'))).toEqual({
      permissions: { deny: ['Bash(curl *)', 'Read(./.env)', 'Read(./.env.*)', 'Read(./**/*.sql)'] },
      cleanupPeriodDays: 7,
      env: { ANTHROPIC_BASE_URL: 'https://tollgate.example.com' },
      apiKeyHelper: HELPER('alice'),
      model: 'claude-sonnet-4-6',
    });
    const again = await cli.run(['claude-code', 'settings', '--user', 'alice', '--managed', managed], {
      env,
    });
    expect(again.stdout).toContain('is already up to date.');

    const viaProject = await cli.run(['claude-code', 'settings', '--user', 'alice', '--project', project()], {
      env,
    });
    expect(viaProject.stdout).toContain('is already up to date.');
    const unknown = await cli.run(['claude-code', 'settings', '--user', 'nobody', '--project', project()], {
      env,
    });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('error: no user named nobody\n');
  });

  it('the in-process key helper prints the stored key', async () => {
    const key = (await readFile(keyFile('alice'), 'utf8')).trim();
    const result = await cli.run(['claude-code', 'key-helper', '--profile', 'alice'], { env });
    expect(result).toEqual({ code: 0, stdout: `${key}\n`, stderr: '' });
    const missing = await cli.run(['claude-code', 'key-helper', '--profile', 'zed'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /^error: no Tollgate key stored for profile zed: run `tollgate claude-code setup/,
    );
  });
});
