// The same migrations, services and CLI on SQLite (always) and PostgreSQL (when
// TOLLGATE_TEST_DATABASE_URL is set, as in CI): identity, vault, keys and audit behave alike.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliHome, tempHome } from './helpers/cli.js';
import { createPgSchema, PG_URL, type PgSchema } from './helpers/pg.js';
import { canaryAnthropicKey } from './helpers/secrets.js';

interface Target {
  name: string;
  setup(): Promise<{ env: Record<string, string>; teardown(): Promise<void> }>;
}

const targets: Target[] = [{ name: 'sqlite', setup: async () => ({ env: {}, teardown: async () => {} }) }];
const pgUrl = PG_URL;
if (pgUrl) {
  targets.push({
    name: 'postgres',
    setup: async () => {
      const schema: PgSchema = await createPgSchema(pgUrl);
      return { env: { TOLLGATE_DATABASE_URL: schema.url }, teardown: () => schema.drop() };
    },
  });
}

describe.each(targets)('storage on $name', (target) => {
  let cli: CliHome;
  let teardown: () => Promise<void>;

  beforeAll(async () => {
    const setup = await target.setup();
    teardown = setup.teardown;
    cli = await tempHome(setup.env);
    const init = await cli.json<{ home: string; admin_token: string }>(['init']);
    expect(init.admin_token).toMatch(/^tga_/);
  });
  afterAll(async () => {
    await cli.cleanup();
    await teardown();
  });

  it('refuses to initialise the same database twice', async () => {
    const again = await cli.run(['init']);
    expect(again.code).not.toBe(0);
  });

  it('keeps teams, users, credentials and keys with their policies', async () => {
    await cli.json(['team', 'add', 'platform', '--monthly-budget', '250.5']);
    const user = await cli.json<{ id: string; name: string }>([
      'user',
      'add',
      'alice',
      '--team',
      'platform',
      '--monthly-budget',
      '40',
    ]);
    expect(user).toMatchObject({ name: 'alice' });
    expect(user.id).toMatch(/^usr_/);
    await cli.json(['user', 'add', 'worker', '--role', 'service']);
    await cli.json(
      [
        'credential',
        'add',
        'alice-key',
        '--provider',
        'anthropic',
        '--owner',
        'user:alice',
        '--env',
        'dev',
        '--no-validate',
      ],
      {
        stdin: canaryAnthropicKey(),
      },
    );
    const issued = await cli.json<{ id: string; key: string }>([
      'key',
      'issue',
      '--user',
      'alice',
      '--models',
      'claude-sonnet-4-6,claude-haiku-4-5',
      '--tools',
      'bash,web_search',
      '--max-tokens',
      '4096',
      '--monthly-budget',
      '10',
      '--daily-budget',
      '1.25',
      '--max-cost-per-request',
      '0.5',
      '--rpm',
      '60',
      '--tpm',
      '100000',
      '--output-tpm',
      '20000',
      '--concurrency',
      '4',
      '--expires',
      '90d',
      '--env',
      'dev',
      '--credential',
      'alice-key',
      '--scopes',
      'inference,self-service',
    ]);
    expect(issued.key).toMatch(/^tg_[A-Za-z0-9]{49}$/);
    const shown = await cli.json<Record<string, unknown>>(['key', 'show', issued.id]);
    expect(shown).toMatchObject({
      user: 'alice',
      status: 'active',
      models: ['claude-sonnet-4-6', 'claude-haiku-4-5'],
      tools: ['bash', 'web_search'],
      max_tokens: 4096,
      monthly_budget_usd: '10.00',
      daily_budget_usd: '1.25',
      max_cost_per_request_usd: '0.50',
      rpm: 60,
      input_tpm: 100000,
      output_tpm: 20000,
      concurrency: 4,
      environment: 'dev',
      credential: 'alice-key',
      scopes: ['inference', 'self-service'],
    });
    expect(JSON.stringify(shown)).not.toContain(issued.key);
    const service = await cli.json<{ scopes: string[] }>([
      'key',
      'issue',
      '--user',
      'worker',
      '--scopes',
      'inference,act-for-users',
    ]);
    expect(service.scopes).toEqual(['inference', 'act-for-users']);

    const teams = await cli.json<Array<{ name: string; members: number; monthly_budget_usd: string }>>([
      'team',
      'list',
    ]);
    expect(teams).toEqual([
      expect.objectContaining({ name: 'platform', members: 1, monthly_budget_usd: '250.50' }),
    ]);
  });

  it('rotates and revokes keys, removes users with their keys and credentials', async () => {
    const issued = await cli.json<{ id: string }>(['key', 'issue', '--user', 'alice']);
    const rotated = await cli.json<{ id: string; key: string; replaces: string }>([
      'key',
      'rotate',
      issued.id,
      '--grace',
      '24h',
    ]);
    expect(rotated.replaces).toBe(issued.id);
    const old = await cli.json<{ status: string; rotated_to: string; expires_at: string }>([
      'key',
      'show',
      issued.id,
    ]);
    expect(old.rotated_to).toBe(rotated.id);
    expect(Date.parse(old.expires_at) - Date.now()).toBeGreaterThan(23 * 3600_000);
    const revoked = await cli.json<{ status: string }>(['key', 'revoke', rotated.id]);
    expect(revoked.status).toBe('revoked');
    expect((await cli.run(['key', 'revoke', rotated.id])).stderr).toMatch(/already revoked/);

    const pinned = await cli.run(['credential', 'remove', 'alice-key']);
    expect(pinned.stderr).toMatch(/pinned by active gateway keys/);
    const removed = await cli.json<{ revoked_keys: number; removed_credentials: number }>([
      'user',
      'remove',
      'alice',
    ]);
    expect(removed.revoked_keys).toBe(2);
    expect(removed.removed_credentials).toBe(1);
    const keys = await cli.json<Array<{ user: string; status: string }>>(['key', 'list']);
    expect(keys.filter((k) => k.user === 'alice').every((k) => k.status === 'revoked')).toBe(true);
    expect(await cli.json<unknown[]>(['credential', 'list'])).toEqual([]);
    // The name is free again for a new person.
    await cli.json(['user', 'add', 'alice']);
  });

  it('switches, disables and enables credentials', async () => {
    await cli.json(['credential', 'add', 'work', '--provider', 'anthropic', '--no-validate'], {
      stdin: canaryAnthropicKey(),
    });
    await cli.json(['credential', 'add', 'personal', '--provider', 'anthropic', '--no-validate'], {
      stdin: canaryAnthropicKey(),
    });
    const preferred = async () =>
      (await cli.json<Array<{ name: string; preferred: boolean }>>(['credential', 'list']))
        .filter((c) => c.preferred)
        .map((c) => c.name);
    expect(await preferred()).toEqual(['work']);
    await cli.json(['credential', 'use', 'personal']);
    expect(await preferred()).toEqual(['personal']);
    expect((await cli.json<{ status: string }>(['credential', 'disable', 'work'])).status).toBe('inactive');
    expect((await cli.run(['credential', 'use', 'work'])).stderr).toMatch(/enable it first/);
    expect((await cli.json<{ status: string }>(['credential', 'enable', 'work'])).status).toBe('active');
    await cli.json(['credential', 'remove', 'work']);
    expect((await cli.run(['credential', 'show', 'work'])).stderr).toMatch(/no credential named work/);
  });

  it('records every change in a verifiable audit chain', async () => {
    const entries = await cli.json<Array<{ seq: number; action: string }>>([
      'audit',
      'list',
      '--limit',
      '1000',
    ]);
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_e, i) => i + 1));
    expect(new Set(entries.map((e) => e.action))).toEqual(
      new Set([
        'install.init',
        'team.add',
        'user.add',
        'credential.add',
        'key.issue',
        'key.rotate',
        'key.revoke',
        'user.remove',
        'credential.use',
        'credential.disable',
        'credential.enable',
        'credential.remove',
      ]),
    );
    const verify = await cli.run(['audit', 'verify']);
    expect(verify.code).toBe(0);
  });
});
