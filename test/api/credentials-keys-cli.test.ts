// The credential and key commands against a remote server (--server + TOLLGATE_ADMIN_TOKEN, no local
// home) print what they print locally; the bundle commands refuse --server, saying why.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, runCli } from '../helpers/cli.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey, findLeaks } from '../helpers/secrets.js';

describe('credential and key commands, local and remote', () => {
  let h: Harness;
  let local: (argv: string[], stdin?: string) => Promise<CliResult>;
  let remote: (argv: string[], stdin?: string) => Promise<CliResult>;
  const secrets: string[] = [];
  const printed: string[] = [];

  beforeAll(async () => {
    h = await startHarness();
    const localEnv = { TOLLGATE_HOME: h.config.home, TOLLGATE_UPSTREAM_URL: h.fake.url };
    // No home: a directory that does not exist, and an upstream nobody listens on.
    const remoteEnv = {
      TOLLGATE_HOME: join(h.config.home, '..', 'no-such-home'),
      TOLLGATE_UPSTREAM_URL: 'http://127.0.0.1:9',
      TOLLGATE_SERVER: h.url,
      TOLLGATE_ADMIN_TOKEN: h.adminToken,
    };
    const record = (result: CliResult) => {
      printed.push(result.stdout, result.stderr);
      return result;
    };
    local = async (argv, stdin) => record(await runCli(argv, localEnv, stdin));
    remote = async (argv, stdin) => record(await runCli(argv, remoteEnv, stdin));
    await h.services.users.add(h.admin, { name: 'alice', monthlyBudgetMicro: null });
  });
  afterAll(() => h.close());

  it('adds credentials and issues keys remotely, the secret read from stdin and sent in the body', async () => {
    const org = canaryAnthropicKey();
    secrets.push(org);
    const added = await remote(
      ['credential', 'add', 'org-key', '--provider', 'anthropic', '--env', 'prod'],
      org,
    );
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain(
      `Added credential org-key (anthropic, owner org, prod): ${org.slice(0, 16)}`,
    );
    const own = canaryAnthropicKey();
    secrets.push(own);
    const user = await local(
      ['credential', 'add', 'alice-key', '--provider', 'anthropic', '--owner', 'user:alice'],
      own,
    );
    expect(user.code, user.stderr).toBe(0);

    const rejected = canaryAnthropicKey();
    secrets.push(rejected);
    h.fake.revokeKey(rejected);
    const refused = await remote(['credential', 'add', 'bad', '--provider', 'anthropic'], rejected);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: Anthropic rejected this key .*nothing was stored\n$/);

    const issued = await remote(['key', 'issue', '--user', 'alice', '--tools', 'Read,Grep', '--json']);
    expect(issued.code, issued.stderr).toBe(0);
    const key = JSON.parse(issued.stdout) as { key: string; tools: string[] };
    secrets.push(key.key);
    expect(key.tools).toEqual(['Read', 'Grep']);
    expect((await local(['key', 'issue', '--user', 'alice', '--name', 'ci'])).code).toBe(0);
    const rotated = canaryAnthropicKey();
    secrets.push(rotated);
    const rotate = await remote(['credential', 'rotate', 'alice-key', '--grace', '1h'], rotated);
    expect(rotate.code, rotate.stderr).toBe(0);
    expect(rotate.stdout).toMatch(/stays usable as alice-key\.previous/);
  });

  it('prints the same `key list` and `credential list` either way', async () => {
    for (const argv of [
      ['key', 'list'],
      ['key', 'list', '--json'],
      ['key', 'list', '--user', 'alice'],
      ['credential', 'list'],
      ['credential', 'list', '--json'],
      ['credential', 'list', '--owner', 'user:alice'],
      ['credential', 'show', 'org-key'],
    ]) {
      const here = await local(argv);
      const there = await remote(argv);
      expect(here.code, `${argv.join(' ')}: ${here.stderr}`).toBe(0);
      expect(there.stdout, argv.join(' ')).toBe(here.stdout);
      expect(there.code).toBe(0);
    }
    // Positive control: the lists are not empty, and the remote one is not a copy of nothing.
    const credentials = JSON.parse((await remote(['credential', 'list', '--json'])).stdout) as unknown[];
    expect(credentials).toHaveLength(3);
    expect(JSON.parse((await remote(['key', 'list', '--json'])).stdout)).toHaveLength(2);
  });

  it('answers a remote refusal with the same message and status as local', async () => {
    for (const argv of [
      ['key', 'revoke', 'key_doesnotexist'],
      ['credential', 'show', 'nope'],
      ['key', 'issue', '--user', 'alice', '--scopes', 'act-for-users'],
    ]) {
      const here = await local(argv);
      const there = await remote(argv);
      expect(here.code).not.toBe(0);
      expect([there.code, there.stderr]).toEqual([here.code, here.stderr]);
    }
  });

  it('refuses --server for the local-only bundle commands, saying so', async () => {
    for (const argv of [
      ['credential', 'export', '--out', 'x.bundle'],
      ['credential', 'import', 'x.bundle'],
      ['credential', 'import-secrets', 'secrets.yml'],
    ]) {
      const result = await remote([...argv, '--server', h.url]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(
        new RegExp(
          `\`tollgate credential ${argv[1]}\` works on the local database only; run it on the server's machine, without --server`,
        ),
      );
    }
  });

  it('never printed a secret except the key, once, at issue', async () => {
    const [key, ...credentialSecrets] = [secrets[3] as string, ...secrets.filter((_, i) => i !== 3)];
    expect(findLeaks(printed.join('\n'), credentialSecrets)).toEqual([]);
    expect(printed.filter((text) => text.includes(key))).toHaveLength(1);
  });
});
