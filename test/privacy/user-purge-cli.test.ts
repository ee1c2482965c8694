// `tollgate user purge NAME` from the compiled CLI: on the local database and against a running server
// (--server, TOLLGATE_ADMIN_TOKEN, no home); a refusal (the last admin) exits 1 with a one-line reason,
// beside the same command succeeding once another admin exists. Needs `npx tsc -p tsconfig.build.json`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, runCli } from '../helpers/cli.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

describe('user purge from the CLI', () => {
  let h: Harness;
  let local: (argv: string[]) => Promise<CliResult>;
  let remote: (argv: string[]) => Promise<CliResult>;
  beforeAll(async () => {
    h = await startHarness();
    for (const name of ['pia-local', 'pia-remote'])
      await h.services.users.add(h.admin, { name, email: `${name}@example.org` });
    await h.services.users.add(h.admin, { name: 'root-admin', role: 'admin' });
    local = (argv) => runCli(argv, { TOLLGATE_HOME: h.config.home, TOLLGATE_UPSTREAM_URL: h.fake.url });
    remote = (argv) =>
      runCli([...argv, '--server', h.url], {
        TOLLGATE_ADMIN_TOKEN: h.adminToken,
        TOLLGATE_HOME: '/nonexistent',
      });
  }, 60_000);
  afterAll(() => h.close());

  it('purges locally and remotely; the name is gone from the user list', async () => {
    const text = await local(['user', 'purge', 'pia-local']);
    expect(text.stderr).toBe('');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /^Purged pia-local: now purged-[0-9a-f]{12} in usage and audit; 0 key\(s\) revoked/,
    );
    const json = await remote(['user', 'purge', 'pia-remote', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      purged: true,
      pseudonym: expect.stringMatching(/^purged-/),
    });
    const list = await remote(['user', 'list', '--json']);
    expect(list.stdout).not.toContain('pia-');
    expect(list.stdout).toContain('root-admin');
    // Again: already purged (by id), refused.
    const again = await remote(['user', 'purge', JSON.parse(json.stdout).id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already been purged');
  });

  it('refuses the last admin, and purges them once another admin exists', async () => {
    const refused = await remote(['user', 'purge', 'root-admin']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: root-admin is the last admin/);
    expect(refused.stdout).toBe('');
    await h.services.users.add(h.admin, { name: 'next-admin', role: 'admin' });
    expect((await local(['user', 'purge', 'root-admin'])).code).toBe(0);
  });
});
