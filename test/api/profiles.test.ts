// Key profiles: named policy templates. A key issued with a profile starts from its policy, options
// given override it, checkPolicy judges the result, and removing the profile leaves the keys alone.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliHome, runCli } from '../helpers/cli.js';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';

const tool = (name: string) => ({ name, description: name, input_schema: { type: 'object' as const } });

describe('key profiles', () => {
  let h: Harness;
  let cli: Pick<CliHome, 'run'>;

  beforeAll(async () => {
    h = await startHarness();
    await h.orgCredential();
    await h.services.users.add(h.admin, { name: 'alice', monthlyBudgetMicro: null });
    await h.services.users.add(h.admin, { name: 'worker', role: 'service', monthlyBudgetMicro: null });
    const env = { TOLLGATE_HOME: h.config.home, TOLLGATE_UPSTREAM_URL: h.fake.url };
    cli = { run: (argv, o = {}) => runCli(argv, { ...env, ...o.env }, o.stdin) };
  });
  afterAll(() => h.close());

  /** What the gateway answers a request of `key` offering these tools. */
  const withTools = (key: string, names: string[]) =>
    h
      .client(key)
      .messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 20,
        messages: [{ role: 'user', content: 'hi' }],
        tools: names.map(tool),
      })
      .then(
        () => ({ status: 200, message: '' }),
        (e: { status?: number; message?: string }) => ({ status: e.status ?? 0, message: e.message ?? '' }),
      );

  it('creates the profiles of docs/profiles.md with its exact commands', async () => {
    const commands = documentedCommands(
      await readFile(new URL('../../docs/profiles.md', import.meta.url), 'utf8'),
    );
    expect(commands.map((argv) => argv.slice(0, 3).join(' '))).toEqual([
      'profile add analysis',
      'profile add generation',
      'profile add admin',
    ]);
    for (const argv of commands) {
      const result = await cli.run(argv);
      expect(result.code, `${argv.join(' ')}: ${result.stderr}`).toBe(0);
      expect(result.stdout).toContain(`Added key profile ${argv[2]}.`);
    }
    const analysis = (await h.api('GET', '/admin/v1/profiles/analysis')).json;
    expect(analysis).toMatchObject({
      name: 'analysis',
      description: 'read-only code analysis',
      tools: ['Read', 'Grep', 'Glob'],
      models: null,
      monthly_budget_usd: '50.00',
      expires: '90d',
      scopes: ['inference'],
    });

    const list = await h.api('GET', '/admin/v1/profiles');
    expect(list.json.items.map((p: ApiJson) => p.name)).toEqual(['admin', 'analysis', 'generation']);
    const admin = (await h.api('GET', '/admin/v1/profiles/admin')).json;
    expect(admin).toMatchObject({
      tools: null,
      models: null,
      rpm: null,
      scopes: ['inference', 'self-service'],
    });
    const shown = await cli.run(['profile', 'show', 'generation']);
    expect(shown.stdout).toMatch(/tools: +Read, Grep, Glob, Write, Edit/);
    expect(shown.stdout).toMatch(/monthly budget: +\$100\.00/);

    const duplicate = await h.api('POST', '/admin/v1/profiles', { body: { name: 'admin' } });
    expect(duplicate.status).toBe(409);
    const smuggled = await h.api('POST', '/admin/v1/profiles', {
      body: { name: 'x', credential: 'org-key' },
    });
    expect(smuggled.status).toBe(400);
    expect(smuggled.json.error.fields).toEqual(['credential']);
    const actions = (await h.services.audit.list()).map((e) => e.action);
    expect(actions.filter((a) => a === 'profile.add')).toHaveLength(3);
  });

  it('applies a profile at the gateway: its tools are allowed, others refused', async () => {
    const analysis = await h.api('POST', '/admin/v1/keys', { body: { user: 'alice', profile: 'analysis' } });
    expect(analysis.status).toBe(201);
    expect(analysis.json).toMatchObject({ tools: ['Read', 'Grep', 'Glob'], monthly_budget_usd: '50.00' });
    expect(Date.parse(analysis.json.expires_at) - Date.now()).toBeGreaterThan(89 * 86_400_000);
    const generation = await h.api('POST', '/admin/v1/keys', {
      body: { user: 'alice', profile: 'generation' },
    });
    await h.refresh();

    expect(await withTools(analysis.json.key, ['Read', 'Grep'])).toMatchObject({ status: 200 });
    const refused = await withTools(analysis.json.key, ['Read', 'Write']);
    expect(refused.status).toBe(403);
    expect(refused.message).toMatch(/tool Write is not allowed/);
    expect(await withTools(generation.json.key, ['Read', 'Write', 'Edit'])).toMatchObject({ status: 200 });
    expect((await withTools(generation.json.key, ['Bash'])).status).toBe(403);
  });

  it('lets options given override the profile, in either direction', async () => {
    const narrowed = await h.api('POST', '/admin/v1/keys', {
      body: {
        user: 'alice',
        profile: 'generation',
        tools: ['Read'],
        monthly_budget_usd: null,
        expires: '1d',
      },
    });
    expect(narrowed.json).toMatchObject({ tools: ['Read'], monthly_budget_usd: null });
    expect(Date.parse(narrowed.json.expires_at) - Date.now()).toBeLessThan(86_400_000 + 60_000);
    const unexpiring = await h.api('POST', '/admin/v1/keys', {
      body: { user: 'alice', profile: 'analysis', expires: null },
    });
    expect(unexpiring.json).toMatchObject({ expires_at: null, tools: ['Read', 'Grep', 'Glob'] });

    const viaCli = await cli.run([
      'key',
      'issue',
      '--user',
      'alice',
      '--profile',
      'generation',
      '--max-tokens',
      '500',
      '--json',
    ]);
    expect(viaCli.code, viaCli.stderr).toBe(0);
    expect(JSON.parse(viaCli.stdout)).toMatchObject({
      monthly_budget_usd: '100.00',
      max_tokens: 500,
      scopes: ['inference'],
    });
  });

  it('never lets a profile give a key more than its holder may', async () => {
    const created = await h.api('POST', '/admin/v1/profiles', {
      body: { name: 'agent', scopes: ['inference', 'act-for-users'] },
    });
    expect(created.status).toBe(201);
    const before = (await h.api('GET', '/admin/v1/keys?user=alice')).json.items.length;
    const member = await h.api('POST', '/admin/v1/keys', { body: { user: 'alice', profile: 'agent' } });
    expect(member.status).toBe(403);
    expect(member.json.error.message).toMatch(/act-for-users is only for service accounts/);
    expect((await h.api('GET', '/admin/v1/keys?user=alice')).json.items.length).toBe(before);
    // Positive control: the same profile for a service.
    const service = await h.api('POST', '/admin/v1/keys', { body: { user: 'worker', profile: 'agent' } });
    expect(service.status).toBe(201);
    expect(service.json.scopes).toEqual(['inference', 'act-for-users']);
    // A profile's own contradictions are refused when it is added.
    const contradictory = await h.api('POST', '/admin/v1/profiles', {
      body: { name: 'odd', daily_budget_usd: '5', monthly_budget_usd: '1' },
    });
    expect(contradictory.status).toBe(400);
    expect((await h.api('GET', '/admin/v1/profiles/odd')).status).toBe(404);
  });

  it('removing a profile leaves the keys issued with it as they are', async () => {
    const issued = (await h.api('POST', '/admin/v1/keys', { body: { user: 'alice', profile: 'analysis' } }))
      .json;
    const { key: _once, ...before } = issued;
    const removed = await cli.run(['profile', 'remove', 'analysis']);
    expect(removed.code, removed.stderr).toBe(0);
    expect((await h.api('GET', '/admin/v1/profiles/analysis')).status).toBe(404);
    expect((await h.api('GET', `/admin/v1/keys/${issued.id}`)).json).toEqual(before);
    await h.refresh();
    expect((await withTools(issued.key, ['Write'])).status).toBe(403);
    expect(await withTools(issued.key, ['Glob'])).toMatchObject({ status: 200 });
    const gone = await h.api('POST', '/admin/v1/keys', { body: { user: 'alice', profile: 'analysis' } });
    expect(gone.status).toBe(404);
    expect((await h.services.audit.list()).some((e) => e.action === 'profile.remove')).toBe(true);
  });
});

/** The `tollgate profile add …` commands of a Markdown file, as argv (continuation lines joined). */
function documentedCommands(markdown: string): string[][] {
  const joined = markdown.replace(/\\\n\s*/g, ' ');
  return joined
    .split('\n')
    .filter((line) => line.startsWith('tollgate profile add ') && !line.includes('['))
    .map((line) =>
      (line.slice('tollgate '.length).match(/"[^"]*"|\S+/g) ?? []).map((t) => t.replace(/^"(.*)"$/, '$1')),
    );
}
