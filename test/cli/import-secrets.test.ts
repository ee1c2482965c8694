// `tollgate credential import-secrets FILE`: a legacy .secrets.yml into the vault, the file left untouched.
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { canaryAnthropicKey, findLeaks } from '../helpers/secrets.js';

const ADVICE =
  'the file still holds the keys in plaintext: remove them from it (and from version control history) now that they are in the vault';

describe('credential import-secrets', () => {
  let fake: FakeUpstream;
  let cli: CliHome;
  const api = canaryAnthropicKey();
  const admin = canaryAnthropicKey('admin01');
  const revoked = canaryAnthropicKey();
  const dbPassword = `pg-canary-${canaryAnthropicKey().slice(-24)}`;
  const hint = (key: string) => `${key.slice(0, 16)}...${key.slice(-4)}`;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    cli = await tempHome({ TOLLGATE_UPSTREAM_URL: fake.url });
    await cli.run(['init']);
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await fake.close();
    await cli.cleanup();
  });

  async function secretsFile(name: string, text: string): Promise<string> {
    const file = join(cli.home, '..', name);
    await writeFile(file, text, { mode: 0o600 });
    await chmod(file, 0o600);
    return file;
  }

  const proposalLayout = (orgKey: string, adminKey: string) =>
    [
      'database:',
      `  password: "${dbPassword}"`,
      '  host: db.internal',
      'claude:',
      `  org_api_key: "${orgKey}"`,
      `  admin_api_key: "${adminKey}"`,
      '  default_model: "claude-sonnet-4-5"',
      '  workspace_id: "wrkspc_01FakeWorkspace"',
      'slack:',
      '  webhook: https://hooks.example.com/x',
      '',
    ].join('\n');

  it('imports both keys, validated, lists them with hints and leaves the file untouched', async () => {
    const file = await secretsFile('.secrets.yml', proposalLayout(api, admin));
    const bytes = await readFile(file);
    const before = await stat(file);

    const result = await cli.run(['credential', 'import-secrets', file]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(
      `imported org-api-key (anthropic, org): ${hint(api)}, checked with Anthropic`,
    );
    expect(result.stdout).toContain(
      `imported org-admin-key (anthropic-admin, org): ${hint(admin)}, checked with Anthropic`,
    );
    expect(result.stdout).toContain('remembered default_model = claude-sonnet-4-5');
    expect(result.stdout).toContain('remembered anthropic_workspace_id = wrkspc_01FakeWorkspace');
    expect(result.stdout).toContain(ADVICE);
    expect(result.stdout).not.toContain('Warning:');
    expect(fake.served.map((s) => [s.path, s.apiKey])).toEqual([
      ['/v1/models', api],
      ['/v1/organizations/me', admin],
    ]);

    const listed = await cli.json<Array<{ name: string; provider: string; owner: string; hint: string }>>([
      'credential',
      'list',
    ]);
    expect(listed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          name: 'org-api-key',
          provider: 'anthropic',
          owner: 'org',
          hint: hint(api),
        }),
        expect.objectContaining({
          name: 'org-admin-key',
          provider: 'anthropic-admin',
          owner: 'org',
          hint: hint(admin),
        }),
      ]),
    );

    expect(await readFile(file)).toEqual(bytes);
    const after = await stat(file);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.mode).toBe(before.mode);
    expect(findLeaks(cli.transcript(), [api, admin, dbPassword])).toEqual([]);
  });

  it('skips keys whose names exist on a rerun', async () => {
    const file = await secretsFile('.secrets.yml', proposalLayout(api, admin));
    const report = await cli.json<{
      imported: unknown[];
      skipped: Array<{ field: string; name: string; reason: string }>;
    }>(['credential', 'import-secrets', file]);
    expect(report.imported).toEqual([]);
    expect(report.skipped).toEqual([
      expect.objectContaining({ name: 'org-api-key', reason: expect.stringMatching(/^exists/) }),
      expect.objectContaining({ name: 'org-admin-key', reason: expect.stringMatching(/^exists/) }),
      expect.objectContaining({
        field: 'claude.default_model',
        reason: 'already remembered (claude-sonnet-4-5)',
      }),
      expect.objectContaining({
        field: 'claude.workspace_id',
        reason: 'already remembered (wrkspc_01FakeWorkspace)',
      }),
    ]);
    expect(fake.served).toEqual([]);
  });

  it('refuses a revoked key with the friendly reason, stores nothing for it and exits 1', async () => {
    fake.revokeKey(revoked);
    const fresh = canaryAnthropicKey('admin01');
    const file = await secretsFile('.secrets-revoked.yml', proposalLayout(revoked, fresh));
    const result = await cli.run(['credential', 'import-secrets', file, '--name-prefix', 'second-']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /refused claude\.org_api_key \(second-org-api-key\): Anthropic rejected this key/,
    );
    expect(result.stdout).toContain('imported second-org-admin-key');
    expect(result.stderr).toMatch(/refused and not stored: second-org-api-key/);
    const names = (await cli.json<Array<{ name: string }>>(['credential', 'list'])).map((c) => c.name);
    expect(names).toContain('second-org-admin-key');
    expect(names).not.toContain('second-org-api-key');
    expect(findLeaks(cli.transcript(), [revoked, fresh])).toEqual([]);
  });

  it('warns when the file is readable by other users', async () => {
    const file = await secretsFile(
      '.secrets-open.yml',
      proposalLayout(canaryAnthropicKey(), canaryAnthropicKey('admin01')),
    );
    await chmod(file, 0o644);
    const result = await cli.run([
      'credential',
      'import-secrets',
      file,
      '--name-prefix',
      'open-',
      '--no-validate',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Warning: .*readable by other users \(mode 0644\)/);
    expect(result.stdout).toContain('not validated (--no-validate)');
    expect(fake.served).toEqual([]);
  });

  it('refuses malformed YAML with a clear error, importing nothing and quoting nothing', async () => {
    const secret = canaryAnthropicKey();
    const file = await secretsFile(
      '.secrets-bad.yml',
      `claude:\n  org_api_key: "${secret}\n  admin_api_key: [\n`,
    );
    const result = await cli.run(['credential', 'import-secrets', file, '--name-prefix', 'bad-']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/\.secrets-bad\.yml:\d+:\d+: YAML syntax error: .*nothing was imported/);
    expect(findLeaks(result.stdout + result.stderr, [secret])).toEqual([]);
    const names = (await cli.json<Array<{ name: string }>>(['credential', 'list'])).map((c) => c.name);
    expect(names.some((n) => n.startsWith('bad-'))).toBe(false);
  });
});
