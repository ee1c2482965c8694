// `tollgate anthropic workspaces …` and `tollgate anthropic keys …` driven through the real CLI against
// the fake Anthropic Admin API: paging, retries, each plain-words refusal beside a working call,
// audit entries, a disabled key then refused by Messages, and no secret in any output.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { canaryAnthropicKey, findLeaks } from '../helpers/secrets.js';

interface WorkspaceJson {
  id: string;
  name: string;
  archived_at: string | null;
}
interface KeyJson {
  id: string;
  name: string;
  status: string;
  workspace_id: string | null;
  partial_key_hint: string;
  tollgate_credential: string | null;
}
interface AuditJson {
  actor: string;
  action: string;
  target_id: string | null;
  details: Record<string, unknown>;
}

const ADMIN_KEY = canaryAnthropicKey('admin01');
const STORED_KEY = canaryAnthropicKey('api03');
const OTHER_KEY = canaryAnthropicKey('api03');
// An admin-looking key the fake treats as a regular API key: the Admin API answers 403 "not authorized to use the Admin API".
const NOT_ADMIN_KEY = canaryAnthropicKey('admin01');

let fake: FakeUpstream;
let cli: CliHome;

beforeAll(async () => {
  fake = await startFakeUpstream({ validKeys: [NOT_ADMIN_KEY] });
  cli = await tempHome({ TOLLGATE_UPSTREAM_URL: fake.url });
  expect((await cli.run(['init'])).code).toBe(0);
});
afterAll(async () => {
  await fake.close();
  await cli.cleanup();
});

const adminCalls = () => fake.served.filter((r) => r.path.startsWith('/v1/organizations/'));

async function messages(key: string): Promise<number> {
  const response = await fetch(`${fake.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'claude-sonnet-4-6',
      max_tokens: 10,
      messages: [{ role: 'user', content: 'hi' }],
    }),
  });
  await response.arrayBuffer();
  return response.status;
}

describe('anthropic admin commands', () => {
  it('says plainly that no admin key is configured, then works once one is added', async () => {
    const refused = await cli.run(['anthropic', 'workspaces', 'list']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'no Anthropic admin key is configured; add one with `tollgate credential add NAME --provider anthropic-admin`',
    );
    expect(adminCalls()).toHaveLength(0);

    const added = await cli.run(['credential', 'add', 'org-admin', '--provider', 'anthropic-admin'], {
      stdin: ADMIN_KEY,
    });
    expect(added.code).toBe(0);
    const listed = await cli.run(['anthropic', 'workspaces', 'list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('(none)');
    const call = fake.served.at(-1);
    expect(call?.path).toBe('/v1/organizations/workspaces');
    expect(call?.apiKey).toBe(ADMIN_KEY);
    expect(call?.headers.anthropicVersion).toBe('2023-06-01');
  });

  it('creates, lists and archives workspaces, each change audited', async () => {
    const created = await cli.json<WorkspaceJson>(['anthropic', 'workspaces', 'create', 'research']);
    expect(created.id).toMatch(/^wrkspc_/);
    expect(fake.admin.workspaces().map((w) => w.name)).toEqual(['research']);

    const table = await cli.run(['anthropic', 'workspaces', 'list']);
    expect(table.stdout).toContain('research');
    expect(table.stdout).toContain(created.id);

    const archived = await cli.json<WorkspaceJson>(['anthropic', 'workspaces', 'archive', created.id]);
    expect(archived.archived_at).not.toBeNull();
    expect(await cli.json<WorkspaceJson[]>(['anthropic', 'workspaces', 'list'])).toEqual([]);
    const all = await cli.json<WorkspaceJson[]>(['anthropic', 'workspaces', 'list', '--archived']);
    expect(all.map((w) => w.id)).toEqual([created.id]);

    const audit = await cli.json<AuditJson[]>(['audit', 'list']);
    const create = audit.find((e) => e.action === 'anthropic.workspace.create');
    const archive = audit.find((e) => e.action === 'anthropic.workspace.archive');
    expect(create).toMatchObject({ target_id: created.id, details: { name: 'research' } });
    expect(create?.actor).toMatch(/^cli:/);
    expect(archive).toMatchObject({ target_id: created.id });
  });

  it('refuses a workspace name over 40 characters before calling Anthropic; 40 is fine', async () => {
    const before = adminCalls().length;
    const long = await cli.run(['anthropic', 'workspaces', 'create', 'x'.repeat(41)]);
    expect(long.code).toBe(2);
    expect(long.stderr).toContain('a workspace name has 1 to 40 characters');
    expect(adminCalls()).toHaveLength(before);
    expect((await cli.run(['anthropic', 'workspaces', 'create', 'y'.repeat(40)])).code).toBe(0);
  });

  it('walks every page of a list when Anthropic answers a few items at a time', async () => {
    for (const name of ['p1', 'p2', 'p3', 'p4']) {
      expect((await cli.run(['anthropic', 'workspaces', 'create', name])).code).toBe(0);
    }
    fake.admin.setMaxPageSize(2);
    const from = fake.served.length;
    const names = (await cli.json<WorkspaceJson[]>(['anthropic', 'workspaces', 'list'])).map((w) => w.name);
    expect(names).toEqual(['y'.repeat(40), 'p1', 'p2', 'p3', 'p4']);
    const pages = fake.served.slice(from);
    expect(pages).toHaveLength(3);
    expect(pages[0]?.query.after_id).toBeUndefined();
    expect(pages[1]?.query.after_id).toBe(fake.admin.workspaces()[2]?.id);
    fake.admin.setMaxPageSize(1000);
  });

  it('lists API keys with the Tollgate credential each matches by hint, and filters them', async () => {
    expect(
      (await cli.run(['credential', 'add', 'org-main', '--provider', 'anthropic'], { stdin: STORED_KEY }))
        .code,
    ).toBe(0);
    const workspace = fake.admin.workspaces().find((w) => w.name === 'p1');
    fake.admin.addApiKey({ secret: STORED_KEY, name: 'tollgate prod', id: 'apikey_stored' });
    fake.admin.addApiKey({
      secret: OTHER_KEY,
      name: 'console key',
      id: 'apikey_other',
      workspaceId: workspace?.id ?? null,
    });
    fake.admin.addApiKey({ secret: canaryAnthropicKey(), name: 'old', id: 'apikey_old', status: 'inactive' });

    const keys = await cli.json<KeyJson[]>(['anthropic', 'keys', 'list']);
    expect(keys.map((k) => [k.id, k.tollgate_credential])).toEqual([
      ['apikey_stored', 'org-main'],
      ['apikey_other', null],
      ['apikey_old', null],
    ]);
    expect(keys[0]?.partial_key_hint).toBe(`${STORED_KEY.slice(0, 16)}...${STORED_KEY.slice(-4)}`);

    const table = await cli.run(['anthropic', 'keys', 'list']);
    expect(table.stdout).toMatch(/apikey_stored.*org-main/);
    expect(table.stdout).toMatch(/apikey_other.*—/);

    const inactive = await cli.json<KeyJson[]>(['anthropic', 'keys', 'list', '--status', 'inactive']);
    expect(inactive.map((k) => k.id)).toEqual(['apikey_old']);
    expect(fake.served.at(-1)?.query.status).toBe('inactive');
    const inWorkspace = await cli.json<KeyJson[]>([
      'anthropic',
      'keys',
      'list',
      '--workspace',
      workspace?.id ?? '',
    ]);
    expect(inWorkspace.map((k) => k.id)).toEqual(['apikey_other']);

    const bad = await cli.run(['anthropic', 'keys', 'list', '--status', 'revoked']);
    expect(bad.code).toBe(2);
  });

  it('disables a key: Anthropic then refuses it on /v1/messages while another key still works', async () => {
    expect(await messages(OTHER_KEY)).toBe(200);
    expect(await messages(STORED_KEY)).toBe(200);

    const out = await cli.run(['anthropic', 'keys', 'disable', 'apikey_other']);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('Disabled Anthropic API key console key (apikey_other)');
    expect(fake.served.at(-1)).toMatchObject({
      method: 'POST',
      path: '/v1/organizations/api_keys/apikey_other',
    });

    expect(out.stdout).not.toContain('stored in Tollgate');
    expect(await messages(OTHER_KEY)).toBe(401);
    expect(await messages(STORED_KEY)).toBe(200);

    const audit = await cli.json<AuditJson[]>(['audit', 'list', '--action', 'anthropic.api_key.disable']);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ target_id: 'apikey_other', details: { status: 'inactive' } });
  });

  it('disabling a key Tollgate stores names the credential to disable there too', async () => {
    const spare = canaryAnthropicKey('api03');
    expect(
      (await cli.run(['credential', 'add', 'spare', '--provider', 'anthropic'], { stdin: spare })).code,
    ).toBe(0);
    fake.admin.addApiKey({ secret: spare, name: 'spare key', id: 'apikey_spare' });
    expect(await messages(spare)).toBe(200);
    const out = await cli.run(['anthropic', 'keys', 'disable', 'apikey_spare']);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('It is stored in Tollgate as credential spare');
    expect(await messages(spare)).toBe(401);
    expect(findLeaks(cli.transcript(), [spare])).toEqual([]);
  });

  it('retries a 429 after the retry-after it names, and a 529 with backoff', async () => {
    fake.enqueueFault(
      { kind: 'status', status: 429, retryAfterS: 1 },
      { path: '/v1/organizations/workspaces' },
    );
    const from = fake.served.length;
    const started = Date.now();
    expect((await cli.run(['anthropic', 'workspaces', 'list'])).code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(fake.served.slice(from).map((r) => r.status)).toEqual([429, 200]);

    fake.enqueueFault({ kind: 'status', status: 529 }, { path: '/v1/organizations/api_keys' });
    const next = fake.served.length;
    expect((await cli.run(['anthropic', 'keys', 'list'])).code).toBe(0);
    expect(fake.served.slice(next).map((r) => r.status)).toEqual([529, 200]);
  });

  it('gives up after four attempts and says so; the next call works', async () => {
    for (let i = 0; i < 4; i++)
      fake.enqueueFault({ kind: 'status', status: 529 }, { pathPrefix: '/v1/organizations/' });
    const from = fake.served.length;
    const out = await cli.run(['anthropic', 'workspaces', 'list']);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("Anthropic's Admin API answered 529");
    expect(out.stderr).toContain('gave up after 4 attempts');
    expect(fake.served.slice(from).map((r) => r.status)).toEqual([529, 529, 529, 529]);
    expect((await cli.run(['anthropic', 'workspaces', 'list'])).code).toBe(0);
  });

  it('says when the organisation has no access, and works again once it has', async () => {
    fake.admin.setNoAccess(true);
    const refused = await cli.run(['anthropic', 'keys', 'list']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('the admin key has no access to this');
    fake.admin.setNoAccess(false);
    expect((await cli.run(['anthropic', 'keys', 'list'])).code).toBe(0);
  });

  it('says when the admin key is invalid or revoked, and a disable of an unknown key is not found', async () => {
    const unknown = await cli.run(['anthropic', 'keys', 'disable', 'apikey_nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('Anthropic found no such object');

    fake.revokeKey(ADMIN_KEY);
    const refused = await cli.run(['anthropic', 'workspaces', 'list']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Anthropic refused the admin key: it is invalid or has been revoked');
    const audit = await cli.json<AuditJson[]>(['audit', 'list']);
    expect(audit.filter((e) => e.action.startsWith('anthropic.'))).toHaveLength(9);
  });

  it('says when the stored admin credential is not an admin key (a working admin key is the control)', async () => {
    const other = await tempHome({ TOLLGATE_UPSTREAM_URL: fake.url });
    try {
      await other.run(['init']);
      const added = await other.run(
        ['credential', 'add', 'not-admin', '--provider', 'anthropic-admin', '--no-validate'],
        { stdin: NOT_ADMIN_KEY },
      );
      expect(added.code).toBe(0);
      const refused = await other.run(['anthropic', 'workspaces', 'list']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('the stored admin credential is not an Admin API key');
      expect(findLeaks(other.transcript(), [NOT_ADMIN_KEY])).toEqual([]);
    } finally {
      await other.cleanup();
    }
    // The control: the main home's admin key (no longer revoked) lists fine.
    fake.reset();
    expect((await cli.run(['anthropic', 'workspaces', 'list'])).code).toBe(0);
  });

  it('says these commands are local only when given --server (locally they run)', async () => {
    const remote = await cli.run(['--server', 'http://127.0.0.1:9', 'anthropic', 'keys', 'list']);
    expect(remote.code).toBe(2);
    expect(remote.stderr).toContain('`tollgate anthropic keys list` works on the local database only');
    expect((await cli.run(['anthropic', 'keys', 'list'])).code).toBe(0);
  });

  it('never prints a secret', () => {
    expect(findLeaks(cli.transcript(), [ADMIN_KEY, STORED_KEY, OTHER_KEY])).toEqual([]);
  });
});
