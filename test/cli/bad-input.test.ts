// Bad input is answered with a clear one-line reason, a non-zero exit, and no change to the database.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';
import { databaseDigest } from '../helpers/snapshot.js';

describe('bad input changes nothing', () => {
  let cli: CliHome;
  let dbFile: string;

  beforeAll(async () => {
    cli = await tempHome();
    expect((await cli.run(['init'])).code).toBe(0);
    await cli.run(['team', 'add', 'platform']);
    await cli.run(['user', 'add', 'alice', '--team', 'platform']);
    await cli.run(['credential', 'add', 'org-key', '--provider', 'anthropic', '--no-validate'], {
      stdin: canaryAnthropicKey(),
    });
    dbFile = join(cli.home, 'tollgate.db');
  });
  afterAll(() => cli.cleanup());

  async function refused(
    argv: string[],
    pattern: RegExp,
    options: { stdin?: string; env?: Record<string, string>; multiline?: boolean } = {},
  ) {
    const before = databaseDigest(dbFile);
    const result = await cli.run(argv, options);
    expect(result.code, `${argv.join(' ')} should fail`).not.toBe(0);
    expect(result.stderr).toMatch(pattern);
    // One line, except config files, whose every problem is listed.
    if (!options.multiline) expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(databaseDigest(dbFile)).toBe(before);
    return result;
  }

  it.each([
    ['-5', /must not be negative/],
    ['1e999', /no exponent/],
    ['abc', /budget must be an amount in USD/],
    ['', /budget must not be empty/],
    ['12.3456789', /decimal/],
  ])('refuses the budget %j', async (budget, pattern) => {
    await refused(['user', 'add', 'bob', '--monthly-budget', budget], pattern);
    await refused(['team', 'add', 'ops', '--monthly-budget', budget], pattern);
    await refused(['key', 'issue', '--user', 'alice', '--daily-budget', budget], pattern);
  });

  it('refuses duplicate names', async () => {
    await refused(['team', 'add', 'platform'], /already exists/);
    await refused(['user', 'add', 'alice'], /already exists/);
    await refused(
      ['credential', 'add', 'org-key', '--provider', 'anthropic', '--no-validate'],
      /already exists/,
      {
        stdin: canaryAnthropicKey(),
      },
    );
  });

  it('refuses unknown users, teams and credentials', async () => {
    await refused(['user', 'add', 'bob', '--team', 'nope'], /no team named nope/);
    await refused(['key', 'issue', '--user', 'nobody'], /no user named nobody/);
    await refused(['key', 'issue', '--user', 'alice', '--credential', 'nope'], /no credential named nope/);
    await refused(
      ['credential', 'add', 'x', '--provider', 'github', '--owner', 'user:nobody', '--no-validate'],
      /no user named nobody/,
      {
        stdin: 'ghp_testtoken000000000000000000000000',
      },
    );
    await refused(['user', 'remove', 'nobody'], /no user named nobody/);
    await refused(['key', 'revoke', 'key_doesnotexist'], /no gateway key/);
  });

  it('refuses invalid names and options', async () => {
    await refused(['user', 'add', 'bad name'], /not valid/);
    await refused(['user', 'add', 'bob', '--role', 'root'], /--role must be one of admin, member, service/);
    await refused(['user', 'add', 'bob', '--email', 'not-an-email'], /email/);
    await refused(['key', 'issue', '--user', 'alice', '--rpm', '-1'], /--rpm/);
    await refused(['key', 'issue', '--user', 'alice', '--expires', 'forever'], /--expires/);
    await refused(['key', 'issue', '--user', 'alice', '--scopes', 'act-for-users'], /service accounts/);
    await refused(['key', 'issue', '--user', 'alice', '--scopes', 'root'], /unknown scope/);
    await refused(
      ['credential', 'add', 'x', '--provider', 'openai', '--no-validate'],
      /--provider must be one of/,
    );
    await refused(
      ['credential', 'add', 'x', '--provider', 'anthropic', '--no-validate'],
      /no secret was given/,
      { stdin: '' },
    );
    await refused(['credential', 'add', 'x', '--provider', 'anthropic', '--no-validate'], /admin key/, {
      stdin: canaryAnthropicKey('admin01'),
    });
  });

  it('refuses a secret on argv, with an explanation', async () => {
    const key = canaryAnthropicKey();
    const result = await refused(['credential', 'add', 'x', '--provider', 'anthropic', key], /process list/);
    expect(result.stderr).not.toContain(key);
    await refused(
      ['credential', 'add', 'x', '--provider', 'anthropic', `--secret=${key}`],
      /--secret is not accepted/,
    );
    await refused(
      ['credential', 'add', 'x', '--provider', 'anthropic', '--token', 'abc'],
      /--token is not accepted/,
    );
    await refused(
      ['user', 'add', 'tg_Wa55LVrSrzZ69kIM6I10unmXunc9pIqpn623veawnhj1cFxj1'],
      /looks like a secret/,
    );
  });

  it('refuses a malformed config file, naming file, key path and problem', async () => {
    const config = join(cli.home, '..', 'bad.yml');
    await writeFile(config, 'server:\n  port: "eighty"\nclaude:\n  max_monthly_spend_usd: -5\n  bogus: 1\n');
    const result = await refused(['user', 'add', 'bob'], /bad\.yml/, {
      env: { TOLLGATE_CONFIG: config },
      multiline: true,
    });
    expect(result.stderr).toContain('server.port');
    expect(result.stderr).toContain('claude.max_monthly_spend_usd');
    expect(result.stderr).toContain('claude.bogus: unknown key');
    await writeFile(config, 'server: [unclosed\n');
    await refused(['user', 'list'], /bad\.yml:\d+:\d+: YAML syntax error/, {
      env: { TOLLGATE_CONFIG: config },
    });
  });

  it('refuses a wrong or short master key and changes nothing', async () => {
    const wrong = Buffer.alloc(32, 1).toString('base64');
    await refused(['user', 'add', 'bob'], /does not belong to this installation/, {
      env: { TOLLGATE_MASTER_KEY: wrong },
    });
    await refused(['user', 'list'], /32/, {
      env: { TOLLGATE_MASTER_KEY: Buffer.alloc(16, 1).toString('base64') },
    });
    const file = join(cli.home, '..', 'short.key');
    await writeFile(file, Buffer.alloc(31, 2).toString('base64'));
    await refused(['user', 'list'], /31 bytes/, { env: { TOLLGATE_MASTER_KEY_FILE: file } });
    // A master key file readable by others is refused.
    await chmod(join(cli.home, 'master.key'), 0o644);
    await refused(['user', 'list'], /chmod 600/);
    await chmod(join(cli.home, 'master.key'), 0o600);
  });

  it('refuses to initialise twice, and accepts an existing empty home', async () => {
    await refused(['init'], /already holds a Tollgate installation/);
    const other = await tempHome();
    await mkdir(other.home, { recursive: true });
    expect((await other.run(['init'])).code).toBe(0);
    await other.cleanup();
    const busy = await tempHome();
    await mkdir(busy.home, { recursive: true });
    await writeFile(join(busy.home, 'notes.txt'), 'hello');
    const result = await busy.run(['init']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/not empty/);
    await busy.cleanup();
  });

  it('answers commands on an uninitialised home with what to do', async () => {
    const fresh = await tempHome();
    const result = await fresh.run(['user', 'list']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/tollgate init/);
    await fresh.cleanup();
  });
});
