// The CLI in remote mode (--server + TOLLGATE_ADMIN_TOKEN, from a directory with no home) runs the same
// scenario as local mode and prints the same output with the same exit statuses.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, runCli, tempHome } from '../helpers/cli.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

type Runner = (argv: string[], stdin?: string) => Promise<CliResult>;

/** Ids, times, keys and tokens differ between two installations; everything else must not. */
function normalise(text: string): string {
  return (
    text
      .replace(/\b(usr|tm|cred|key|prf|atk)_[A-Za-z0-9]+/g, '$1_<id>')
      .replace(/\btga?_(?:…|\.\.\.)?[A-Za-z0-9]+/g, 'tg_<secret>')
      .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{3})?)?Z/g, '<time>')
      .replace(/\d{4}-\d{2}-\d{2}/g, '<date>')
      .replace(/\b[0-9a-f]{16,64}\b/g, '<hash>')
      // Who acted: the local OS user (cli:NAME) or the remote caller (admin-token, admin:NAME).
      .replace(/\b(cli:[\w.-]+|admin-token|admin:[\w.-]+)/g, '<actor>')
      .replace(/[─│┌┐└┘├┤┬┴┼ ]+/g, ' ')
  );
}

/** The scenario: every remote-capable command group, including refusals. Returns the transcript. */
async function scenario(run: Runner, secret: string): Promise<Array<{ argv: string; result: CliResult }>> {
  const steps: Array<{ argv: string; result: CliResult }> = [];
  const step = async (argv: string[], stdin?: string) => {
    const result = await run(argv, stdin);
    steps.push({ argv: argv.join(' '), result });
    return result;
  };
  const json = async <T>(argv: string[], stdin?: string): Promise<T> => {
    const result = await step([...argv, '--json'], stdin);
    expect(result.code, `${argv.join(' ')}: ${result.stderr}`).toBe(0);
    return JSON.parse(result.stdout) as T;
  };
  await step(['team', 'add', 'platform', '--monthly-budget', '100']);
  await step(['team', 'update', 'platform', '--byok', 'preferred']);
  await json(['team', 'list']);
  await json(['user', 'add', 'alice', '--team', 'platform', '--email', 'alice@example.com']);
  await json(['user', 'add', 'ops', '--role', 'admin']);
  await step(['user', 'update', 'alice', '--monthly-budget', '20']);
  await json(['user', 'show', 'alice']);
  await step(['user', 'list']);
  await step(['budget', 'set', '--team', 'platform', '--period', 'day', '--usd', '5']);
  await json(['budget', 'list']);
  await step(['budget', 'clear', '--team', 'platform', '--period', 'day']);
  await step(['credential', 'add', 'org-main', '--provider', 'anthropic'], `${secret}\n`);
  await json(['credential', 'list']);
  await step(['credential', 'show', 'org-main']);
  await step(['credential', 'disable', 'org-main']);
  await step(['credential', 'enable', 'org-main']);
  await step(['profile', 'add', 'analysis', '--tools', 'Read,Grep,Glob']);
  await json(['profile', 'list']);
  const key = await json<{ id: string }>(['key', 'issue', '--user', 'alice', '--profile', 'analysis']);
  await step(['key', 'list']);
  await json(['key', 'show', key.id]);
  const rotated = await json<{ id: string }>(['key', 'rotate', key.id, '--grace', '1h']);
  await step(['key', 'revoke', rotated.id]);
  const token = await json<{ id: string }>(['admin-token', 'issue', '--user', 'ops']);
  await json(['admin-token', 'list']);
  await step(['admin-token', 'revoke', token.id]);
  await json(['usage', '--by', 'user']);
  await step(['audit', 'verify']);
  // Refusals: the same one-line reason and exit status in both modes.
  await step(['user', 'show', 'nobody']);
  await step(['team', 'add', 'bad name!']);
  await step(['budget', 'set', '--team', 'platform', '--period', 'week', '--usd', '5']);
  await step(['key', 'issue', '--user', 'alice', '--profile', 'no-such-profile']);
  await step(['user', 'remove', 'alice']);
  return steps;
}

describe('the CLI against a remote server', () => {
  let h: Harness;
  let emptyDir: string;

  beforeAll(async () => {
    h = await startHarness();
    emptyDir = await mkdtemp(join(tmpdir(), 'tollgate-remote-'));
  });

  afterAll(async () => {
    await h?.close();
    await rm(emptyDir, { recursive: true, force: true });
  });

  const remoteEnv = () => ({ TOLLGATE_TEST_CWD: emptyDir, TOLLGATE_ADMIN_TOKEN: h.adminToken });

  it('prints what local mode prints, with the same exit statuses, needing no home', async () => {
    const local = await tempHome({ TOLLGATE_UPSTREAM_URL: h.fake.url });
    try {
      expect((await local.run(['init'])).code).toBe(0);
      // One secret for both (its hint is printed); two installations may hold the same key.
      const secret = canaryAnthropicKey();
      const localSteps = await scenario(
        (argv, stdin) => local.run(argv, { ...(stdin ? { stdin } : {}) }),
        secret,
      );
      const remoteSteps = await scenario(
        (argv, stdin) => runCli([...argv, '--server', h.url], remoteEnv(), stdin ?? ''),
        secret,
      );
      expect(remoteSteps.length).toBe(localSteps.length);
      for (const [i, remote] of remoteSteps.entries()) {
        const here = localSteps[i];
        if (!here) throw new Error('missing local step');
        expect(remote.result.code, `exit status of ${remote.argv}: ${remote.result.stderr}`).toBe(
          here.result.code,
        );
        expect(normalise(remote.result.stdout), `stdout of ${remote.argv}`).toBe(
          normalise(here.result.stdout),
        );
        expect(normalise(remote.result.stderr), `stderr of ${remote.argv}`).toBe(
          normalise(here.result.stderr),
        );
      }
      // Refusals happened (the scenario is not all successes) and the remote side needed no home.
      expect(remoteSteps.filter((s) => s.result.code !== 0).length).toBeGreaterThanOrEqual(4);
      expect(await readdir(emptyDir)).toEqual([]);
      expect(existsSync(join(emptyDir, '.tollgate'))).toBe(false);
    } finally {
      await local.cleanup();
    }
  }, 120_000);

  it('--server works before or after the command, and TOLLGATE_SERVER does the same', async () => {
    const before = await runCli(['--server', h.url, 'team', 'list', '--json'], remoteEnv());
    const after = await runCli(['team', 'list', '--json', '--server', h.url], remoteEnv());
    const byEnv = await runCli(['team', 'list', '--json'], { ...remoteEnv(), TOLLGATE_SERVER: h.url });
    expect(before.code).toBe(0);
    expect(after.stdout).toBe(before.stdout);
    expect(byEnv.stdout).toBe(before.stdout);
  });

  it('without a token it is refused with a one-line reason (and a wrong token too)', async () => {
    const none = await runCli(['team', 'list', '--server', h.url], { TOLLGATE_TEST_CWD: emptyDir });
    expect(none.code).not.toBe(0);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toMatch(/TOLLGATE_ADMIN_TOKEN/);
    const wrong = await runCli(['team', 'list', '--server', h.url], {
      TOLLGATE_TEST_CWD: emptyDir,
      TOLLGATE_ADMIN_TOKEN: 'tga_not-a-token',
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrong.stderr).toMatch(/admin token/);
    // Positive control: the right token works.
    expect((await runCli(['team', 'list', '--server', h.url], remoteEnv())).code).toBe(0);
  });

  it('local-only commands say so when given --server', async () => {
    for (const argv of [
      ['init'],
      ['serve'],
      ['doctor'],
      ['admin-token', 'rotate'],
      ['audit', 'export', '--out', 'x'],
    ]) {
      const result = await runCli([...argv, '--server', h.url], remoteEnv());
      expect(result.code, argv.join(' ')).toBe(2);
      expect(result.stderr, argv.join(' ')).toMatch(/works on the local database only/);
    }
  });
});
