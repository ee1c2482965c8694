// Users and budgets over the admin API: CRUD, unknown fields refused by name, live figures of budgets
// (a request in flight shows as reserved), the org cap from tollgate.yml refused with 409, and budgets
// set through the API enforced by the running gateway within a second.
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

/** Retries `probe` every 50 ms until it returns true, or fails after `ms`. */
async function within(ms: number, probe: () => Promise<boolean>): Promise<void> {
  const start = Date.now();
  while (!(await probe())) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The error a request ends with, or null when it succeeds. */
function outcome(h: Harness, key: string): Promise<unknown> {
  return h
    .client(key)
    .messages.create(PARAMS)
    .then(
      () => null,
      (e: unknown) => e,
    );
}

const refusedBy = (pattern: RegExp) => (e: unknown) =>
  e instanceof Anthropic.RateLimitError && pattern.test(e.message);

describe('users over the admin API', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { TOLLGATE_CLAUDE_PER_CODER_MONTHLY_LIMIT_USD: '25' } });
    await h.orgCredential();
  });
  afterAll(() => h.close());

  it('creates, shows, lists, updates and removes users', async () => {
    expect((await h.api('POST', '/admin/v1/teams', { body: { name: 'platform' } })).status).toBe(201);
    const created = await h.api('POST', '/admin/v1/users', {
      body: { name: 'ann', email: 'ann@example.com', team: 'platform' },
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      name: 'ann',
      email: 'ann@example.com',
      role: 'member',
      team: 'platform',
      monthly_budget_usd: '25.00', // omitted: the configured per-coder default
      active_keys: 0,
      byok: null,
      preferred_model: null,
    });
    const none = await h.api('POST', '/admin/v1/users', {
      body: { name: 'bot', role: 'service', monthly_budget_usd: null, byok: 'required' },
    });
    expect(none.json).toMatchObject({
      role: 'service',
      monthly_budget_usd: null,
      byok: 'required',
      team: null,
    });
    expect((await h.api('POST', '/admin/v1/users', { body: { name: 'ann' } })).status).toBe(409);

    const id: string = created.json.id;
    expect((await h.api('GET', `/admin/v1/users/${id}`)).json.name).toBe('ann');
    expect((await h.api('GET', '/admin/v1/users/ann')).json.id).toBe(id);
    expect(
      (await h.api('GET', '/admin/v1/users?role=service')).json.items.map((u: ApiJson) => u.name),
    ).toEqual(['bot']);
    expect((await h.api('GET', '/admin/v1/users?team=platform')).json.items).toHaveLength(1);
    // Paging: one row per page, the cursor leads to the next, the last page says so.
    const first = await h.api('GET', '/admin/v1/users?limit=1');
    expect(first.json.items.map((u: ApiJson) => u.name)).toEqual(['ann']);
    const second = await h.api('GET', `/admin/v1/users?limit=1&cursor=${first.json.next_cursor}`);
    expect(second.json).toMatchObject({ items: [{ name: 'bot' }], next_cursor: null });

    const updated = await h.api('PATCH', '/admin/v1/users/ann', {
      body: { email: null, role: 'admin', team: null, monthly_budget_usd: '40', byok: 'required' },
    });
    expect(updated.status).toBe(200);
    expect(updated.json).toMatchObject({
      email: null,
      role: 'admin',
      team: null,
      monthly_budget_usd: '40.00',
      byok: 'required',
    });
    // Fields left out stay as they are.
    const partial = await h.api('PATCH', '/admin/v1/users/ann', { body: { team: 'platform' } });
    expect(partial.json).toMatchObject({ role: 'admin', team: 'platform', monthly_budget_usd: '40.00' });
    const audit = await h.installation.db.kysely
      .selectFrom('audit_log')
      .select(['action', 'actor', 'details'])
      .where('action', '=', 'user.update')
      .execute();
    expect(audit).toHaveLength(2);
    expect(audit[0]?.actor).toBe('admin-token');
    expect(JSON.stringify(audit[0]?.details)).toContain('monthly_budget_micro');

    const removed = await h.api('DELETE', '/admin/v1/users/bot');
    expect(removed.json).toEqual({
      id: none.json.id,
      name: 'bot',
      removed: true,
      revoked_keys: 0,
      removed_credentials: 0,
    });
    expect((await h.api('GET', '/admin/v1/users/bot')).status).toBe(404);
  });

  it('refuses an unknown field by name, beside the same PATCH without it', async () => {
    const bad = await h.api('PATCH', '/admin/v1/users/ann', { body: { email: 'a@example.com', owner: 'x' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/unknown field owner/);
    expect((await h.api('GET', '/admin/v1/users/ann')).json.email).toBeNull(); // nothing applied
    const good = await h.api('PATCH', '/admin/v1/users/ann', { body: { email: 'a@example.com' } });
    expect(good.status).toBe(200);
    expect(good.json.email).toBe('a@example.com');
    const badRole = await h.api('PATCH', '/admin/v1/users/ann', { body: { role: 'root' } });
    expect(badRole.status).toBe(400);
    expect(badRole.json.error.message).toMatch(/role/);
    expect((await h.api('PATCH', '/admin/v1/users/nobody', { body: {} })).status).toBe(404);
    expect((await h.api('GET', '/admin/v1/users', { token: '' })).status).toBe(401);
  });

  it('keeps a service account that acts for users a service account, beside one that does not', async () => {
    await h.api('POST', '/admin/v1/users', { body: { name: 'relay', role: 'service' } });
    await h.api('POST', '/admin/v1/users', { body: { name: 'batch', role: 'service' } });
    const acting = await h.services.keys.issue(h.admin, {
      user: 'relay',
      policy: { scopes: ['inference', 'act-for-users'] },
      credential: null,
    });
    const refused = await h.api('PATCH', '/admin/v1/users/relay', { body: { role: 'member' } });
    expect(refused.status).toBe(409);
    expect(refused.json.error.message).toContain(acting.id);
    expect((await h.api('GET', '/admin/v1/users/relay')).json.role).toBe('service');
    expect((await h.api('PATCH', '/admin/v1/users/batch', { body: { role: 'member' } })).json.role).toBe(
      'member',
    );
    await h.services.keys.revoke(h.admin, acting.id);
    expect((await h.api('PATCH', '/admin/v1/users/relay', { body: { role: 'member' } })).status).toBe(200);
  });

  it('are described in the OpenAPI document', async () => {
    const doc = (await h.api('GET', '/admin/v1/openapi.json', { token: '' })).json;
    expect(doc.paths['/admin/v1/users/{user}'].patch.operationId).toBe('users.update');
    expect(doc.paths['/admin/v1/budgets'].put.operationId).toBe('budgets.set');
    expect(doc.paths['/admin/v1/budgets'].delete.operationId).toBe('budgets.clear');
  });

  it("a user's team change reaches the running gateway: the new team's budget applies", async () => {
    await h.api('POST', '/admin/v1/teams', { body: { name: 'broke', monthly_budget_usd: '0.000001' } });
    await h.api('POST', '/admin/v1/users', { body: { name: 'cid', monthly_budget_usd: null } });
    const key = await h.key({ user: 'cid' });
    expect(await outcome(h, key)).toBeNull();
    expect((await h.api('PATCH', '/admin/v1/users/cid', { body: { team: 'broke' } })).status).toBe(200);
    await within(1000, async () => refusedBy(/budget of team broke/)(await outcome(h, key)));
    await h.api('PATCH', '/admin/v1/users/cid', { body: { team: null } });
    await within(1000, async () => (await outcome(h, key)) === null);
  });
});

describe('budgets over the admin API', () => {
  let h: Harness;
  let key: string;
  beforeAll(async () => {
    h = await startHarness();
    await h.orgCredential();
    key = await h.key({ user: 'dee', team: 'data' });
  });
  afterAll(() => h.close());

  const list = async (query: string): Promise<ApiJson[]> =>
    (await h.api('GET', `/admin/v1/budgets${query}`)).json.items;

  it('sets, lists and clears budgets of every scope, audited', async () => {
    const team = await h.api('PUT', '/admin/v1/budgets', {
      body: { scope: 'team', target: 'data', period: 'month', limit_usd: '100' },
    });
    expect(team.status).toBe(200);
    expect(team.json).toMatchObject({
      scope: 'team',
      target: 'data',
      period: 'month',
      limit_usd: '100.00',
      spent_usd: '0.00',
      reserved_usd: '0.00',
      remaining_usd: '100.00',
      source: 'api',
    });
    const keyId = (await h.services.keys.list({ user: 'dee' }))[0]?.id ?? '';
    await h.api('PUT', '/admin/v1/budgets', {
      body: { scope: 'key', target: keyId, period: 'day', limit_usd: 5 },
    });
    await h.api('PUT', '/admin/v1/budgets', { body: { scope: 'org', period: 'total', limit_usd: '1000' } });
    expect((await list('')).map((b) => [b.scope, b.target, b.period])).toEqual([
      ['org', null, 'total'],
      ['team', 'data', 'month'],
      ['key', keyId, 'day'],
    ]);
    expect(await list(`?scope=key&target=${keyId}`)).toMatchObject([{ target: keyId, limit_usd: '5.00' }]);
    const cleared = await h.api('DELETE', '/admin/v1/budgets?scope=org&period=total');
    expect(cleared.json).toEqual({
      scope: 'org',
      target: null,
      target_id: h.installation.orgId,
      period: 'total',
      removed: true,
    });
    expect((await h.api('DELETE', '/admin/v1/budgets?scope=org&period=total')).json.removed).toBe(false);
    expect(await list('?scope=org')).toEqual([]);
    const actions = await h.installation.db.kysely
      .selectFrom('audit_log')
      .select('action')
      .where('action', 'like', 'budget.%')
      .execute();
    expect(actions.map((a) => a.action)).toEqual(['budget.set', 'budget.set', 'budget.set', 'budget.clear']);
    await h.api('DELETE', `/admin/v1/budgets?scope=key&target=${keyId}&period=day`);
  });

  it('refuses bad selectors, beside a good one', async () => {
    const put = (body: unknown) => h.api('PUT', '/admin/v1/budgets', { body });
    expect((await put({ scope: 'team', target: 'data', period: 'day', limit_usd: '1' })).status).toBe(200);
    expect((await put({ scope: 'team', period: 'day', limit_usd: '1' })).json.error.message).toMatch(
      /target/,
    );
    expect((await put({ scope: 'org', target: 'x', period: 'day', limit_usd: '1' })).status).toBe(400);
    expect((await put({ scope: 'team', target: 'nope', period: 'day', limit_usd: '1' })).status).toBe(404);
    expect((await put({ scope: 'user', target: 'dee', period: 'week', limit_usd: '1' })).status).toBe(400);
    expect((await put({ scope: 'user', target: 'dee', period: 'day', limit_usd: '-1' })).status).toBe(400);
    const extra = await put({ scope: 'user', target: 'dee', period: 'day', limit_usd: '1', role: 'admin' });
    expect(extra.json.error.message).toMatch(/unknown field role/);
    expect((await h.api('GET', '/admin/v1/budgets?target=data')).json.error.message).toMatch(/needs a scope/);
    expect((await h.api('GET', '/admin/v1/budgets?scope=team&target=data')).status).toBe(200);
    await h.api('DELETE', '/admin/v1/budgets?scope=team&target=data&period=day');
    await h.api('DELETE', '/admin/v1/budgets?scope=user&target=dee&period=day');
  });

  it('shows a request in flight as reserved, and the spend once it ends', async () => {
    await h.api('PUT', '/admin/v1/budgets', {
      body: { scope: 'user', target: 'dee', period: 'month', limit_usd: '50' },
    });
    const served = h.fake.served.length;
    const controller = new AbortController();
    const pending = h
      .client(key)
      .messages.create(
        {
          ...PARAMS,
          max_tokens: 1000,
          stream: true,
          messages: [{ role: 'user', content: 'hi [[fake fault=hang]]' }],
        },
        { signal: controller.signal },
      )
      .catch((e: unknown) => e);
    await h.fake.waitForServed(served + 1);
    const [held] = await list('?scope=user&target=dee');
    expect(Number(held.reserved_usd)).toBeGreaterThan(0);
    expect(Number(held.remaining_usd)).toBeCloseTo(
      50 - Number(held.spent_usd) - Number(held.reserved_usd),
      6,
    );
    controller.abort();
    await pending;
    await within(1000, async () => (await list('?scope=user&target=dee'))[0].reserved_usd === '0.00');
    const [after] = await list('?scope=user&target=dee');
    expect(Number(after.spent_usd)).toBeGreaterThan(0); // the aborted stream is charged its worst case
  });

  it('a budget set through the API on the org, a team or a user stops requests at the gateway', async () => {
    for (const [selector, pattern] of [
      [{ scope: 'org' }, /budget of the organisation/],
      [{ scope: 'team', target: 'data' }, /budget of team data/],
      [{ scope: 'user', target: 'dee' }, /budget of user dee/],
    ] as const) {
      expect(await outcome(h, key)).toBeNull(); // control: passes before the budget
      const set = await h.api('PUT', '/admin/v1/budgets', {
        body: { ...selector, period: 'day', limit_usd: '0.000001' },
      });
      expect(set.status).toBe(200);
      await within(1000, async () => refusedBy(pattern)(await outcome(h, key)));
      const query = new URLSearchParams({ ...selector, period: 'day' });
      expect((await h.api('DELETE', `/admin/v1/budgets?${query}`)).json.removed).toBe(true);
      await within(1000, async () => (await outcome(h, key)) === null);
    }
  });
});

describe('the org monthly cap from tollgate.yml', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { TOLLGATE_CLAUDE_MAX_MONTHLY_SPEND_USD: '500' } });
    await h.services.teams.add(h.admin, { name: 'ops' });
  });
  afterAll(() => h.close());

  it('is listed with source config and cannot be changed through the API, beside a team budget that can', async () => {
    const team = await h.api('PUT', '/admin/v1/budgets', {
      body: { scope: 'team', target: 'ops', period: 'month', limit_usd: '10' },
    });
    expect(team.status).toBe(200);
    for (const attempt of [
      h.api('PUT', '/admin/v1/budgets', { body: { scope: 'org', period: 'month', limit_usd: '900' } }),
      h.api('DELETE', '/admin/v1/budgets?scope=org&period=month'),
    ]) {
      const refused = await attempt;
      expect(refused.status).toBe(409);
      expect(refused.json.error).toMatchObject({
        code: 'conflict',
        message: 'the org monthly cap is set in tollgate.yml (claude.max_monthly_spend_usd); change it there',
      });
    }
    // Other periods of the org are budgets like any other.
    const daily = await h.api('PUT', '/admin/v1/budgets', {
      body: { scope: 'org', period: 'day', limit_usd: '50' },
    });
    expect(daily.status).toBe(200);
    expect((await h.api('GET', '/admin/v1/budgets?scope=org')).json.items).toMatchObject([
      { scope: 'org', target: null, period: 'day', limit_usd: '50.00', source: 'api' },
      { scope: 'org', target: null, period: 'month', limit_usd: '500.00', source: 'config' },
    ]);
    await h.refresh(); // the gateway's limits: the row for the day, the config for the month
    await h.services.users.add(h.admin, { name: 'capped', monthlyBudgetMicro: null });
    const subject = await h.gateway.deps.keys.subject('capped');
    expect(subject?.orgLimits).toEqual({ day: 50_000_000, month: 500_000_000 });
  });
});
