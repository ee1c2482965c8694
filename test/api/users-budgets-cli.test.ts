// `tollgate user update` and `tollgate budget set|clear|list`: on the local database, and against a
// running server with --server (TOLLGATE_ADMIN_TOKEN, no home), where every command prints exactly
// what it prints locally.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliHome, type CliResult, runCli, tempHome } from '../helpers/cli.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

interface BudgetRow {
  scope: string;
  target: string | null;
  period: string;
  limit_usd: string;
  source: string;
}

describe('user update and budget, locally', () => {
  let cli: CliHome;
  beforeAll(async () => {
    cli = await tempHome();
    expect((await cli.run(['init'])).code).toBe(0);
    expect((await cli.run(['team', 'add', 'platform'])).code).toBe(0);
    expect((await cli.run(['user', 'add', 'ann', '--monthly-budget', '20'])).code).toBe(0);
  });
  afterAll(() => cli.cleanup());

  it('user update changes only the fields given, and none clears', async () => {
    const updated = await cli.json<Record<string, unknown>>([
      'user',
      'update',
      'ann',
      '--team',
      'platform',
      '--email',
      'ann@example.com',
      '--role',
      'admin',
      '--byok',
      'required',
    ]);
    expect(updated).toMatchObject({
      name: 'ann',
      team: 'platform',
      email: 'ann@example.com',
      role: 'admin',
      byok: 'required',
      monthly_budget_usd: '20.00',
      preferred_model: null,
    });
    const text = await cli.run(['user', 'update', 'ann', '--team', 'none', '--monthly-budget', 'none']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('Updated user ann.');
    expect(text.stdout).toMatch(/team: +-\n/);
    expect(text.stdout).toMatch(/monthly budget: unlimited/);
    expect(await cli.json(['user', 'show', 'ann'])).toMatchObject({
      team: null,
      email: 'ann@example.com',
      byok: 'required',
    });
    expect(await cli.json(['user', 'update', 'ann', '--byok', 'inherit', '--email', 'none'])).toMatchObject({
      byok: null,
      email: null,
      role: 'admin',
    });
  });

  it('user update refuses bad values before touching anything, beside a good one', async () => {
    const bad = await cli.run(['user', 'update', 'ann', '--role', 'root']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--role must be one of admin, member, service/);
    const unknownTeam = await cli.run(['user', 'update', 'ann', '--team', 'nope']);
    expect(unknownTeam.code).toBe(1);
    expect(unknownTeam.stderr).toMatch(/no team named nope/);
    expect((await cli.run(['user', 'update', 'ann', '--role', 'member'])).code).toBe(0);
  });

  it('budget set, list and clear, with exactly one selector', async () => {
    for (const argv of [
      ['budget', 'set', '--period', 'day', '--usd', '1'],
      ['budget', 'set', '--org', '--team', 'platform', '--period', 'day', '--usd', '1'],
      ['budget', 'list', '--user', 'ann', '--key', 'key_x'],
    ]) {
      const refused = await cli.run(argv);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/exactly one of --org, --team T, --user U or --key ID/);
    }
    expect((await cli.run(['budget', 'set', '--org', '--period', 'week', '--usd', '1'])).stderr).toMatch(
      /--period must be one of day, month, total/,
    );
    const set = await cli.run(['budget', 'set', '--org', '--period', 'day', '--usd', '5']);
    expect(set.stdout).toBe(
      'Set the daily budget of the organisation to $5.00 (spent $0.00, remaining $5.00).\n',
    );
    expect(
      (await cli.run(['budget', 'set', '--team', 'platform', '--period', 'month', '--usd', '30'])).code,
    ).toBe(0);
    const rows = await cli.json<BudgetRow[]>(['budget', 'list']);
    expect(rows.map((r) => [r.scope, r.target, r.period, r.limit_usd, r.source])).toEqual([
      ['org', null, 'day', '5.00', 'api'],
      ['team', 'platform', 'month', '30.00', 'api'],
    ]); // ann's monthly budget was removed by `--monthly-budget none` above
    const table = (await cli.run(['budget', 'list', '--team', 'platform'])).stdout;
    expect(table).toMatch(/scope.*target.*period.*limit.*spent.*reserved.*remaining.*source/);
    expect(table).toMatch(/team.*platform.*month.*\$30\.00.*\$0\.00.*\$0\.00.*\$30\.00.*api/);
    expect((await cli.run(['budget', 'clear', '--org', '--period', 'day'])).stdout).toBe(
      'Cleared the daily budget of the organisation.\n',
    );
    expect((await cli.run(['budget', 'clear', '--org', '--period', 'day'])).stdout).toBe(
      'The organisation had no daily budget; nothing changed.\n',
    );
    expect(await cli.json(['budget', 'list', '--org'])).toEqual([]);
  });
});

describe('the same commands against a running server (--server)', () => {
  let h: Harness;
  let local: (argv: string[]) => Promise<CliResult>;
  let remote: (argv: string[]) => Promise<CliResult>;
  beforeAll(async () => {
    // The cap comes from the configuration, which the local CLI reads too (here: the environment).
    const cap = { TOLLGATE_CLAUDE_MAX_MONTHLY_SPEND_USD: '500' };
    h = await startHarness({ env: cap });
    await h.services.teams.add(h.admin, { name: 'platform' });
    await h.services.users.add(h.admin, { name: 'ann', team: 'platform', monthlyBudgetMicro: 20_000_000 });
    local = (argv) =>
      runCli(argv, { TOLLGATE_HOME: h.config.home, TOLLGATE_UPSTREAM_URL: h.fake.url, ...cap });
    // No home at all: the remote client needs only the URL and the token.
    remote = (argv) =>
      runCli([...argv, '--server', h.url], {
        TOLLGATE_ADMIN_TOKEN: h.adminToken,
        TOLLGATE_HOME: '/nonexistent',
      });
  });
  afterAll(() => h.close());

  /** Runs argv locally then remotely; both succeed with the same stdout. */
  async function same(argv: string[]): Promise<string> {
    const a = await local(argv);
    const b = await remote(argv);
    expect(a.stderr).toBe('');
    expect(b.stderr).toBe('');
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    return a.stdout;
  }

  it('user show, list and update print the same', async () => {
    expect(await same(['user', 'show', 'ann'])).toContain('team:           platform');
    await same(['user', 'list']);
    await same(['user', 'list', '--json']);
    expect(await same(['user', 'update', 'ann', '--email', 'ann@example.com', '--json'])).toContain(
      '"email": "ann@example.com"',
    );
    await same(['user', 'update', 'ann', '--monthly-budget', '25']);
  });

  it('budget set, list and clear print the same, and so does the refusal of the config cap', async () => {
    expect(await same(['budget', 'set', '--team', 'platform', '--period', 'month', '--usd', '10'])).toBe(
      'Set the monthly budget of team platform to $10.00 (spent $0.00, remaining $10.00).\n',
    );
    expect(await same(['budget', 'list'])).toMatch(/org +│ - +│ month +│ \$500\.00.*config/);
    expect(JSON.parse(await same(['budget', 'list', '--json']))).toHaveLength(3);
    // Set remotely, cleared locally; set locally, cleared remotely: the same words either way.
    await remote(['budget', 'set', '--user', 'ann', '--period', 'day', '--usd', '1']);
    const clearedLocally = await local(['budget', 'clear', '--user', 'ann', '--period', 'day']);
    await local(['budget', 'set', '--user', 'ann', '--period', 'day', '--usd', '1']);
    const clearedRemotely = await remote(['budget', 'clear', '--user', 'ann', '--period', 'day']);
    expect(clearedLocally.stdout).toBe('Cleared the daily budget of user ann.\n');
    expect(clearedRemotely.stdout).toBe(clearedLocally.stdout);
    const refusedLocally = await local(['budget', 'set', '--org', '--period', 'month', '--usd', '900']);
    const refusedRemotely = await remote(['budget', 'set', '--org', '--period', 'month', '--usd', '900']);
    expect(refusedLocally.code).toBe(1);
    expect(refusedLocally.stderr).toBe(
      'error: the org monthly cap is set in tollgate.yml (claude.max_monthly_spend_usd); change it there\n',
    );
    expect([refusedRemotely.code, refusedRemotely.stderr]).toEqual([
      refusedLocally.code,
      refusedLocally.stderr,
    ]);
  });
});
