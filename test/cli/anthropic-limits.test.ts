// `tollgate anthropic limits show|sync` and `anthropic workspaces map` through the real CLI against the
// fake's spend-limits beta: cents as integer strings rounded down, a second sync changes nothing, an
// organisation without access is told so (nothing changed), each refusal beside a working call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { SPEND_LIMITS_BETA as FAKE_BETA } from '../fake-upstream/spend-limits.js';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { canaryAnthropicKey, findLeaks } from '../helpers/secrets.js';

interface LimitJson {
  scope: { type: string; workspace_id?: string };
  team: string | null;
  anthropic_amount_cents: string | null;
  anthropic_limit_set: boolean;
  tollgate_amount_cents: string | null;
  difference_cents: number | null;
  action: string;
}
interface SyncJson {
  changed: LimitJson[];
  limits: LimitJson[];
}
interface AuditJson {
  action: string;
  target_id: string | null;
  details: Record<string, unknown>;
}

const ADMIN_KEY = canaryAnthropicKey('admin01');
const NO_ACCESS =
  'this organisation has no access to spend limits (an early-access beta); nothing was changed';

let fake: FakeUpstream;
let cli: CliHome;
let research: string;
let ops: string;

beforeAll(async () => {
  fake = await startFakeUpstream();
  cli = await tempHome({ TOLLGATE_UPSTREAM_URL: fake.url });
  expect((await cli.run(['init'])).code).toBe(0);
  expect(
    (await cli.run(['credential', 'add', 'org-admin', '--provider', 'anthropic-admin'], { stdin: ADMIN_KEY }))
      .code,
  ).toBe(0);
  // Two workspaces at Anthropic; two teams with monthly budgets, one of them mapped later.
  research = (await cli.json<{ id: string }>(['anthropic', 'workspaces', 'create', 'research'])).id;
  ops = (await cli.json<{ id: string }>(['anthropic', 'workspaces', 'create', 'ops'])).id;
  expect((await cli.run(['team', 'add', 'research', '--monthly-budget', '123.456789'])).code).toBe(0);
  expect((await cli.run(['team', 'add', 'ops', '--monthly-budget', '40'])).code).toBe(0);
  expect((await cli.run(['budget', 'set', '--org', '--period', 'month', '--usd', '500'])).code).toBe(0);
});
afterAll(async () => {
  await fake.close();
  await cli.cleanup();
});

const limitCalls = () => fake.served.filter((r) => r.path === '/v1/organizations/spend_limits');

describe('anthropic limits', () => {
  it('maps a team to a workspace (audited); a malformed workspace id or unknown team is refused', async () => {
    const bad = await cli.run(['anthropic', 'workspaces', 'map', 'research', 'not-a-workspace']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('is not an Anthropic workspace id');
    const unknown = await cli.run(['anthropic', 'workspaces', 'map', 'nobody', research]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no team named nobody');

    const mapped = await cli.run(['anthropic', 'workspaces', 'map', 'research', research]);
    expect(mapped.code).toBe(0);
    expect(mapped.stdout).toContain(`Team research is mapped to Anthropic workspace ${research}.`);
    expect(await cli.json(['anthropic', 'workspaces', 'mappings'])).toEqual([
      { team: 'research', workspaceId: research },
    ]);
    const audit = await cli.json<AuditJson[]>(['audit', 'list', '--action', 'anthropic.workspace.map']);
    expect(audit).toHaveLength(1);
    expect(audit[0]?.details).toMatchObject({ team: 'research', workspace_id: research });
  });

  it('shows what Tollgate would set beside nothing set yet, without changing anything', async () => {
    const rows = await cli.json<LimitJson[]>(['anthropic', 'limits', 'show']);
    expect(rows).toEqual([
      expect.objectContaining({
        scope: { type: 'organization' },
        anthropic_limit_set: false,
        tollgate_amount_cents: '50000',
        action: 'create',
      }),
      expect.objectContaining({
        scope: { type: 'workspace', workspace_id: research },
        team: 'research',
        // $123.456789 rounded DOWN to whole cents: Anthropic's cap never exceeds Tollgate's.
        tollgate_amount_cents: '12345',
        action: 'create',
      }),
    ]);
    expect(fake.spendLimits.writes()).toBe(0);
    const call = limitCalls().at(-1);
    expect(call?.method).toBe('GET');
    expect(call?.headers.anthropicBeta).toEqual([FAKE_BETA]);
    expect(call?.apiKey).toBe(ADMIN_KEY);
  });

  it('sync sets the differing limits in cents as strings, audited; a second sync changes nothing', async () => {
    const out = await cli.run(['anthropic', 'limits', 'sync']);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('Set the monthly spend limit of the organisation to $500.00 (none before).');
    expect(out.stdout).toContain(
      `Set the monthly spend limit of workspace ${research} (team research) to $123.45 (none before).`,
    );
    expect(fake.spendLimits.writes()).toBe(2);
    expect(fake.spendLimits.limits().map((l) => [l.scope, l.amount, l.period])).toEqual([
      [{ type: 'organization' }, '50000', 'monthly'],
      [{ type: 'workspace', workspace_id: research }, '12345', 'monthly'],
    ]);

    const posts = () => limitCalls().filter((r) => r.method === 'POST').length;
    const before = posts();
    const again = await cli.json<SyncJson>(['anthropic', 'limits', 'sync']);
    expect(again.changed).toEqual([]);
    expect(again.limits.map((l) => l.action)).toEqual(['none', 'none']);
    expect(posts()).toBe(before);
    expect(fake.spendLimits.writes()).toBe(2);
    const text = await cli.run(['anthropic', 'limits', 'sync']);
    expect(text.stdout).toContain("Nothing to change: Anthropic's spend limits match Tollgate's.");

    const audit = await cli.json<AuditJson[]>(['audit', 'list', '--action', 'anthropic.limits.sync']);
    expect(audit).toHaveLength(2);
    expect(audit.map((a) => a.details)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ scope: 'organization', from_cents: null, to_cents: '50000' }),
        expect.objectContaining({ scope: 'workspace', team: 'research', to_cents: '12345' }),
      ]),
    );
  });

  it('a changed budget or a newly mapped team is synced alone; limits Tollgate has no budget for are left', async () => {
    expect((await cli.run(['team', 'update', 'research', '--monthly-budget', '100'])).code).toBe(0);
    expect((await cli.run(['anthropic', 'workspaces', 'map', 'ops', ops])).code).toBe(0);
    // A limit someone set in the Console for a workspace no team maps to.
    const other = (await cli.json<{ id: string }>(['anthropic', 'workspaces', 'create', 'console-only'])).id;
    await upsertDirect({ type: 'workspace', workspace_id: other }, '999');

    const shown = await cli.json<LimitJson[]>(['anthropic', 'limits', 'show']);
    expect(
      shown.map((r) => [
        r.team,
        r.anthropic_amount_cents,
        r.tollgate_amount_cents,
        r.difference_cents,
        r.action,
      ]),
    ).toEqual([
      [null, '50000', '50000', 0, 'none'],
      ['ops', null, '4000', null, 'create'],
      ['research', '12345', '10000', -2345, 'update'],
      [null, '999', null, null, 'unmanaged'],
    ]);
    const table = await cli.run(['anthropic', 'limits', 'show']);
    expect(table.stdout).toMatch(/research.*\$123\.45.*\$100\.00.*-\$23\.45.*update/);

    const writes = fake.spendLimits.writes();
    const synced = await cli.json<SyncJson>(['anthropic', 'limits', 'sync']);
    expect(synced.changed.map((c) => c.team)).toEqual(['ops', 'research']);
    expect(fake.spendLimits.writes()).toBe(writes + 2);
    const amounts = new Map(
      fake.spendLimits
        .limits()
        .map((l) => [l.scope.type === 'workspace' ? l.scope.workspace_id : 'org', l.amount]),
    );
    expect(amounts.get(research)).toBe('10000');
    expect(amounts.get(ops)).toBe('4000');
    expect(amounts.get(other)).toBe('999');
    expect((await cli.json<SyncJson>(['anthropic', 'limits', 'sync'])).changed).toEqual([]);
  });

  it('an organisation without access is told so plainly, nothing changes; with access it works again', async () => {
    expect((await cli.run(['team', 'update', 'ops', '--monthly-budget', '41'])).code).toBe(0);
    fake.spendLimits.setNoAccess(true);
    const writes = fake.spendLimits.writes();
    for (const sub of ['show', 'sync']) {
      const refused = await cli.run(['anthropic', 'limits', sub]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(NO_ACCESS);
    }
    expect(fake.spendLimits.writes()).toBe(writes);
    // Other Admin API calls still work: the refusal is the beta's alone.
    expect((await cli.run(['anthropic', 'workspaces', 'list'])).code).toBe(0);

    fake.spendLimits.setNoAccess(false);
    const synced = await cli.json<SyncJson>(['anthropic', 'limits', 'sync']);
    expect(synced.changed.map((c) => [c.team, c.tollgate_amount_cents])).toEqual([['ops', '4100']]);
  });

  it('the fake refuses a float or non-integer amount and a missing beta header (an integer string is the control)', async () => {
    const headers = {
      'x-api-key': ADMIN_KEY,
      'anthropic-version': '2023-06-01',
      'content-type': 'application/json',
      'anthropic-beta': FAKE_BETA,
    };
    const post = async (amount: unknown, h: Record<string, string> = headers) => {
      const r = await fetch(`${fake.url}/v1/organizations/spend_limits`, {
        method: 'POST',
        headers: h,
        body: JSON.stringify({ amount, scope: { type: 'organization' }, period: 'monthly' }),
      });
      return { status: r.status, body: (await r.json()) as { error?: { type: string } } };
    };
    for (const amount of [500.5, 50000, '500.50', '-1', '1e5']) {
      const r = await post(amount);
      expect(r.status).toBe(400);
      expect(r.body.error?.type).toBe('invalid_request_error');
    }
    const { 'anthropic-beta': _beta, ...noBeta } = headers;
    expect((await post('50000', noBeta)).status).toBe(400);
    expect((await post('50000')).status).toBe(200);
  });

  it('needs an admin key and says so (with --server, it asks that server)', async () => {
    const other = await tempHome({ TOLLGATE_UPSTREAM_URL: fake.url });
    try {
      await other.run(['init']);
      const refused = await other.run(['anthropic', 'limits', 'show']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('no Anthropic admin key is configured');
    } finally {
      await other.cleanup();
    }
    const remote = await cli.run(['--server', 'http://127.0.0.1:9', 'anthropic', 'limits', 'sync']);
    expect(remote.code).toBe(1);
    expect(remote.stderr).not.toContain('local database only');
    expect((await cli.run(['anthropic', 'limits', 'show'])).code).toBe(0);
  });

  it('never prints a secret', () => {
    expect(findLeaks(cli.transcript(), [ADMIN_KEY])).toEqual([]);
  });
});

async function upsertDirect(scope: Record<string, string>, amount: string): Promise<void> {
  const r = await fetch(`${fake.url}/v1/organizations/spend_limits`, {
    method: 'POST',
    headers: {
      'x-api-key': ADMIN_KEY,
      'anthropic-version': '2023-06-01',
      'content-type': 'application/json',
      'anthropic-beta': FAKE_BETA,
    },
    body: JSON.stringify({ amount, scope, period: 'monthly' }),
  });
  expect(r.status).toBe(200);
}
