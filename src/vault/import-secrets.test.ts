// importSecrets through the real credential service against the fake upstream.
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../../test/fake-upstream/index.js';
import { type CliHome, tempHome } from '../../test/helpers/cli.js';
import { canaryAnthropicKey, findLeaks } from '../../test/helpers/secrets.js';
import { loadConfig } from '../config/load.js';
import type { ServiceContext } from '../install/context.js';
import { type Installation, openInstallation } from '../install/installation.js';
import { readMeta } from '../install/meta.repo.js';
import { systemClock } from '../lib/clock.js';
import { isAppError } from '../lib/errors.js';
import { createServices, type Services } from '../services.js';
import { type ImportSecretsDeps, importSecrets, PLAINTEXT_ADVICE, unusableReason } from './import-secrets.js';

const actor = { actor: 'test' };

describe('importSecrets', () => {
  let fake: FakeUpstream;
  let cli: CliHome;
  let dir: string;
  let installation: Installation;
  let services: Services;
  let deps: ImportSecretsDeps;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    cli = await tempHome({ TOLLGATE_UPSTREAM_URL: fake.url });
    await cli.run(['init']);
    dir = await mkdtemp(join(tmpdir(), 'tollgate-secrets-'));
    const config = await loadConfig({ env: cli.env, cwd: join(cli.home, '..') });
    installation = await openInstallation(config);
    services = createServices(installation, config, systemClock);
    const ctx: ServiceContext = { installation, clock: systemClock };
    deps = { ctx, credentials: services.credentials, configFile: null, env: {} };
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await installation.close();
    await fake.close();
    await cli.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  async function secretsFile(name: string, text: string, mode = 0o600): Promise<string> {
    const file = join(dir, name);
    await writeFile(file, text, { mode });
    await chmod(file, mode);
    return file;
  }

  it('imports both keys validated, remembers the settings and leaves the file untouched', async () => {
    const api = canaryAnthropicKey();
    const admin = canaryAnthropicKey('admin01');
    const file = await secretsFile(
      'a.yml',
      `database:\n  password: hunter2hunter2\nclaude:\n  org_api_key: "${api}"\n  admin_api_key: "${admin}"\n` +
        '  default_model: claude-sonnet-4-5\n  workspace_id: wrkspc_01AbC\n',
    );
    const before = await stat(file);
    const report = await importSecrets(deps, actor, file, { validate: true, namePrefix: 'a-' });
    expect(report.imported).toEqual([
      {
        field: 'claude.org_api_key',
        name: 'a-org-api-key',
        provider: 'anthropic',
        hint: `${api.slice(0, 16)}...${api.slice(-4)}`,
        validated: true,
      },
      {
        field: 'claude.admin_api_key',
        name: 'a-org-admin-key',
        provider: 'anthropic-admin',
        hint: `${admin.slice(0, 16)}...${admin.slice(-4)}`,
        validated: true,
      },
    ]);
    expect(fake.served.map((s) => [s.path, s.apiKey])).toEqual([
      ['/v1/models', api],
      ['/v1/organizations/me', admin],
    ]);
    expect(report.remembered).toEqual([
      { field: 'claude.default_model', setting: 'default_model', value: 'claude-sonnet-4-5' },
      { field: 'claude.workspace_id', setting: 'anthropic_workspace_id', value: 'wrkspc_01AbC' },
    ]);
    expect(await readMeta(installation.db, 'default_model')).toBe('claude-sonnet-4-5');
    expect(await readMeta(installation.db, 'anthropic_workspace_id')).toBe('wrkspc_01AbC');
    expect(report.skipped).toEqual([]);
    expect(report.warnings).toEqual([]);
    expect(report.advice).toBe(PLAINTEXT_ADVICE);
    expect(findLeaks(JSON.stringify(report), [api, admin, 'hunter2hunter2'])).toEqual([]);
    const after = await stat(file);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.size).toBe(before.size);
    expect(await services.credentials.reveal('a-org-api-key')).toBe(api);

    // A second run finds the names taken and imports nothing.
    const again = await importSecrets(deps, actor, file, { validate: true, namePrefix: 'a-' });
    expect(again.imported).toEqual([]);
    expect(again.skipped.map((s) => [s.field, s.reason.split(':')[0]])).toEqual([
      ['claude.org_api_key', 'exists'],
      ['claude.admin_api_key', 'exists'],
      ['claude.default_model', 'already remembered (claude-sonnet-4-5)'],
      ['claude.workspace_id', 'already remembered (wrkspc_01AbC)'],
    ]);
    expect(again.remembered).toEqual([]);
  });

  it('refuses a revoked key with the friendly reason and stores nothing for it', async () => {
    const revoked = canaryAnthropicKey();
    fake.revokeKey(revoked);
    const file = await secretsFile('b.yml', `claude:\n  org_api_key: ${revoked}\n`);
    const report = await importSecrets(deps, actor, file, { validate: true, namePrefix: 'b-' });
    expect(report.imported).toEqual([]);
    expect(report.refused).toEqual([
      {
        field: 'claude.org_api_key',
        name: 'b-org-api-key',
        code: 'credential_rejected',
        reason: expect.stringMatching(/Anthropic rejected this key/),
      },
    ]);
    expect((await services.credentials.list()).map((c) => c.name)).not.toContain('b-org-api-key');
  });

  it('skips placeholders, empty values and non-strings, and warns about a readable file', async () => {
    const file = await secretsFile(
      'c.yml',
      'claude:\n  org_api_key: "sk-ant-api03-…"\n  admin_api_key: ""\n  default_model: 42\n  workspace_id: "<your workspace>"\n',
      0o644,
    );
    const report = await importSecrets(deps, actor, file, { validate: true, namePrefix: 'c-' });
    expect(report.imported).toEqual([]);
    expect(report.skipped.map((s) => [s.field, s.reason])).toEqual([
      ['claude.org_api_key', 'a placeholder, not a value'],
      ['claude.admin_api_key', 'empty'],
      ['claude.default_model', 'not a string (number)'],
      ['claude.workspace_id', 'a placeholder, not a value'],
    ]);
    expect(report.warnings).toEqual([expect.stringContaining('readable by other users (mode 0644)')]);
    expect(report.advice).toBeNull();
    expect(fake.served).toEqual([]);
  });

  it('keeps an explicitly configured default model', async () => {
    const config = await secretsFile('tollgate.yml', 'claude:\n  default_model: claude-haiku-4-5\n');
    const file = await secretsFile('d.yml', 'claude:\n  default_model: claude-opus-4-1\n');
    for (const configured of [
      { ...deps, configFile: config },
      { ...deps, env: { TOLLGATE_CLAUDE_DEFAULT_MODEL: 'claude-haiku-4-5' } },
    ]) {
      const report = await importSecrets(configured, actor, file, { validate: true, namePrefix: 'd-' });
      expect(report.remembered).toEqual([]);
      expect(report.skipped.find((s) => s.field === 'claude.default_model')?.reason).toMatch(
        /already set by tollgate.yml or the environment/,
      );
    }
    const unset = await secretsFile('tollgate-unset.yml', 'server: { port: 9000 }\n');
    const report = await importSecrets({ ...deps, configFile: unset }, actor, file, {
      validate: true,
      namePrefix: 'd-',
    });
    expect(report.remembered).toEqual([
      { field: 'claude.default_model', setting: 'default_model', value: 'claude-opus-4-1' },
    ]);
  });

  it('refuses malformed, non-mapping, oversized and claude-less files without quoting them', async () => {
    const secret = canaryAnthropicKey();
    const cases: Array<[string, string, RegExp]> = [
      ['bad.yml', `claude:\n  org_api_key: "${secret}\n  admin: [`, /YAML syntax error/],
      ['list.yml', `- ${secret}\n`, /expected a mapping of sections/],
      ['none.yml', 'database: { url: x }\n', /no claude: section/],
      ['big.yml', `claude:\n  x: "${'a'.repeat(1024 * 1024)}"\n`, /larger than 1 MB/],
    ];
    for (const [name, text, message] of cases) {
      const file = await secretsFile(name, text);
      const error = await importSecrets(deps, actor, file, { validate: true, namePrefix: '' }).catch(
        (e: unknown) => e,
      );
      expect(isAppError(error) && error.message).toMatch(message);
      expect(findLeaks(String((error as Error).message), [secret])).toEqual([]);
    }
    const missing = await importSecrets(deps, actor, join(dir, 'missing.yml'), {
      validate: true,
      namePrefix: '',
    }).catch((e: unknown) => e);
    expect(isAppError(missing) && missing.code).toBe('not_found');
    expect(await readFile(join(dir, 'bad.yml'), 'utf8')).toContain(secret);
  });

  it('classifies unusable values', () => {
    expect(unusableReason(undefined)).toBe('not in the file');
    expect(unusableReason(null)).toBe('empty');
    expect(unusableReason('  ')).toBe('empty');
    expect(unusableReason('sk-ant-api03-...')).toBe('a placeholder, not a value');
    expect(unusableReason(['a'])).toBe('not a string (a list)');
    expect(unusableReason('sk-ant-api03-realvalue')).toBeNull();
  });
});
