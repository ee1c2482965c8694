// The default model a .secrets.yml brought in (`credential import-secrets`) is what coder bootstrap
// writes into Claude Code's settings, unless tollgate.yml or the environment names one.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

describe('default model from import-secrets', () => {
  let cli: CliHome;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    cli = await tempHome();
    dir = join(cli.home, '..');
    env = { TOLLGATE_KEY_STORE: 'file', XDG_CONFIG_HOME: join(dir, 'config') };
    expect((await cli.run(['init'])).code).toBe(0);
    const secrets = join(dir, '.secrets.yml');
    await writeFile(
      secrets,
      `claude:\n  org_api_key: "${canaryAnthropicKey()}"\n  default_model: "claude-haiku-4-5"\n`,
      { mode: 0o600 },
    );
    const imported = await cli.run(['credential', 'import-secrets', secrets, '--no-validate']);
    expect(imported.code).toBe(0);
  });
  afterAll(() => cli.cleanup());

  async function bootstrapModel(name: string, extra: Record<string, string> = {}): Promise<string> {
    const project = join(dir, name);
    await mkdir(project, { recursive: true });
    const result = await cli.run(['coder', 'bootstrap', name, '--project', project], {
      env: { ...env, ...extra },
    });
    expect(result.code, result.stderr).toBe(0);
    const settings = JSON.parse(await readFile(join(project, '.claude', 'settings.json'), 'utf8')) as {
      model: string;
    };
    return settings.model;
  }

  it('uses the imported default model', async () => {
    expect(await bootstrapModel('ann')).toBe('claude-haiku-4-5');
  });

  it('lets the environment (or tollgate.yml) win', async () => {
    expect(await bootstrapModel('ben', { TOLLGATE_CLAUDE_DEFAULT_MODEL: 'claude-sonnet-4-6' })).toBe(
      'claude-sonnet-4-6',
    );
  });
});
