// Credentials and gateway keys over the admin API: validation with friendly reasons, secrets never in
// any answer, rotation with grace, keys shown once, revocation reaching the gateway within a second.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey, findLeaks } from '../helpers/secrets.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

/** Retries `probe` every 50 ms until it returns true; returns the elapsed milliseconds. */
async function within(ms: number, probe: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - start;
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('credentials over the admin API', () => {
  let h: Harness;
  /** Every answer body, to search for secrets. */
  const seen: string[] = [];
  const api = async (method: string, path: string, body?: unknown) => {
    const answer = await h.api(method, path, body === undefined ? {} : { body });
    seen.push(JSON.stringify(answer.json));
    return answer;
  };
  /** Every secret sent, to search the answers and the log for. */
  const secrets: string[] = ['ghp_testtoken000000000000000000000000'];
  const canary = (kind?: 'admin01') => {
    const secret = canaryAnthropicKey(kind);
    secrets.push(secret);
    return secret;
  };
  const names = async () =>
    ((await api('GET', '/admin/v1/credentials')).json.items as ApiJson[]).map((c) => c.name as string);

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it('stores a key the upstream accepts and refuses one it rejects, with the reason, storing nothing', async () => {
    const good = canary();
    const created = await api('POST', '/admin/v1/credentials', {
      name: 'org-key',
      provider: 'anthropic',
      secret: good,
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      name: 'org-key',
      provider: 'anthropic',
      owner: 'org',
      status: 'active',
      preferred: true,
      hint: `${good.slice(0, 16)}...${good.slice(-4)}`,
    });
    expect(created.json).not.toHaveProperty('secret');

    const bad = canary();
    h.fake.revokeKey(bad);
    const refused = await api('POST', '/admin/v1/credentials', {
      name: 'revoked',
      provider: 'anthropic',
      secret: bad,
    });
    expect(refused.status).toBe(400);
    expect(refused.json.error.code).toBe('credential_rejected');
    expect(refused.json.error.message).toMatch(/Anthropic rejected this key.*nothing was stored/);
    expect(await names()).toEqual(['org-key']);

    // validate: false skips the call (positive control of the refusal above: the same key is stored).
    const before = h.fake.served.length;
    const unchecked = await api('POST', '/admin/v1/credentials', {
      name: 'unchecked',
      provider: 'anthropic',
      secret: bad,
      validate: false,
    });
    expect(unchecked.status).toBe(201);
    expect(h.fake.served.length).toBe(before);
    expect((await api('DELETE', '/admin/v1/credentials/unchecked')).json).toMatchObject({ removed: true });
  });

  it('maps an upstream 429 to 429 and an unreachable upstream to 502, keeping the friendly message', async () => {
    h.fake.enqueueFault({ kind: 'status', status: 429, retryAfterS: 7 });
    const limited = await api('POST', '/admin/v1/credentials', {
      name: 'limited',
      provider: 'anthropic',
      secret: canary(),
    });
    expect(limited.status).toBe(429);
    expect(limited.json.error).toMatchObject({ code: 'upstream_rate_limited' });
    expect(limited.json.error.message).toMatch(/rate limiting this key; try again in 7 s/);

    h.fake.enqueueFault({ kind: 'reset' });
    const down = await api('POST', '/admin/v1/credentials', {
      name: 'down',
      provider: 'anthropic',
      secret: canary(),
    });
    expect(down.status).toBe(502);
    expect(down.json.error).toMatchObject({ code: 'upstream_unreachable' });
    expect(down.json.error.message).toMatch(/could not reach Anthropic/);
    expect(await names()).toEqual(['org-key']);
  });

  it('refuses a wrong shape, an unknown field and a bad owner by name, before any upstream call', async () => {
    const before = h.fake.served.length;
    const admin = await api('POST', '/admin/v1/credentials', {
      name: 'x',
      provider: 'anthropic',
      secret: canary('admin01'),
    });
    expect(admin.status).toBe(400);
    expect(admin.json.error.message).toMatch(/admin key/);
    const smuggled = await api('POST', '/admin/v1/credentials', {
      name: 'x',
      provider: 'github',
      secret: 'ghp_testtoken000000000000000000000000',
      status: 'active',
    });
    expect(smuggled.status).toBe(400);
    expect(smuggled.json.error.fields).toEqual(['status']);
    const owner = await api('POST', '/admin/v1/credentials', {
      name: 'x',
      provider: 'github',
      secret: 'ghp_testtoken000000000000000000000000',
      owner: 'everyone',
    });
    expect(owner.status).toBe(400);
    expect(owner.json.error.message).toMatch(/owner must be org, team:NAME or user:NAME/);
    expect(h.fake.served.length).toBe(before);
    // Positive control: the same body without the smuggled field is stored.
    const ok = await api('POST', '/admin/v1/credentials', {
      name: 'gh',
      provider: 'github',
      secret: 'ghp_testtoken000000000000000000000000',
      environment: 'dev',
      // GitHub tokens are checked against GitHub's API; this test has no fake GitHub.
      validate: false,
    });
    expect(ok.status).toBe(201);
    expect(ok.json.hint).not.toContain('testtoken');
  });

  it('filters the list, and pages it', async () => {
    const github = (await api('GET', '/admin/v1/credentials?provider=github')).json.items as ApiJson[];
    expect(github.map((c) => c.name)).toEqual(['gh']);
    expect((await api('GET', '/admin/v1/credentials?env=dev')).json.items).toHaveLength(1);
    expect((await api('GET', '/admin/v1/credentials?env=prod')).json.items).toHaveLength(0);
    expect((await api('GET', '/admin/v1/credentials?status=active')).json.items).toHaveLength(2);
    const first = await api('GET', '/admin/v1/credentials?limit=1');
    expect(first.json.items.map((c: ApiJson) => c.name)).toEqual(['gh']);
    const second = await api('GET', `/admin/v1/credentials?limit=1&cursor=${first.json.next_cursor}`);
    expect(second.json).toMatchObject({ items: [{ name: 'org-key' }], next_cursor: null });
    expect((await api('GET', '/admin/v1/credentials?owner=nobody')).status).toBe(400);
  });

  it('rotates with a grace period: the previous secret stays as NAME.previous until then', async () => {
    const bad = canary();
    h.fake.revokeKey(bad);
    const before = (await api('GET', '/admin/v1/credentials/org-key')).json;
    const refused = await api('POST', '/admin/v1/credentials/org-key/rotate', { secret: bad });
    expect(refused.status).toBe(400);
    expect((await api('GET', '/admin/v1/credentials/org-key')).json).toEqual(before);

    const fresh = canary();
    const rotated = await api('POST', '/admin/v1/credentials/org-key/rotate', {
      secret: fresh,
      grace: '24h',
    });
    expect(rotated.status).toBe(200);
    expect(rotated.json.hint).toBe(`${fresh.slice(0, 16)}...${fresh.slice(-4)}`);
    expect(rotated.json.rotated_at).not.toBeNull();
    const graceUntil = Date.parse(rotated.json.grace_until);
    expect(graceUntil - Date.now()).toBeGreaterThan(23 * 3600_000);
    const previous = (await api('GET', '/admin/v1/credentials/org-key.previous')).json;
    expect(previous).toMatchObject({ hint: before.hint, preferred: false });
    expect(Math.abs(Date.parse(previous.retire_at) - graceUntil)).toBeLessThan(5_000);
    const bad_grace = await api('POST', '/admin/v1/credentials/org-key/rotate', {
      secret: canary(),
      grace: 'forever',
    });
    expect(bad_grace.status).toBe(400);
    expect(bad_grace.json.error.fields).toEqual(['grace']);
  });

  it('use / disable / enable / remove by name, and 404 for an unknown one', async () => {
    expect((await api('POST', '/admin/v1/credentials/gh/disable')).json.status).toBe('inactive');
    const use = await api('POST', '/admin/v1/credentials/gh/use');
    expect(use.status).toBe(400);
    expect(use.json.error.message).toMatch(/enable it first/);
    expect((await api('POST', '/admin/v1/credentials/gh/enable')).json.status).toBe('active');
    expect((await api('POST', '/admin/v1/credentials/gh/use')).json.preferred).toBe(true);
    expect((await api('DELETE', '/admin/v1/credentials/gh')).json).toMatchObject({
      name: 'gh',
      removed: true,
    });
    expect((await api('GET', '/admin/v1/credentials/gh')).status).toBe(404);
  });

  it('needs an admin token', async () => {
    const answer = await h.api('GET', '/admin/v1/credentials', { token: '' });
    expect(answer.status).toBe(401);
    expect((await h.api('GET', '/admin/v1/credentials')).status).toBe(200);
  });

  it('never put a secret in any answer', async () => {
    expect(secrets.length).toBeGreaterThan(8);
    const text = seen.join('\n');
    // Positive control: the search finds a secret where one is.
    expect(findLeaks(`${text}${secrets[1]}`, secrets)).not.toEqual([]);
    expect(findLeaks(text, secrets)).toEqual([]);
    expect(findLeaks(h.logs(), secrets)).toEqual([]);
  });
});

describe('gateway keys over the admin API', () => {
  let h: Harness;
  const seen: string[] = [];
  const api = async (method: string, path: string, body?: unknown) => {
    const answer = await h.api(method, path, body === undefined ? {} : { body });
    seen.push(JSON.stringify(answer.json));
    return answer;
  };
  const works = (key: string) =>
    h
      .client(key)
      .messages.create(PARAMS)
      .then(
        () => true,
        () => false,
      );

  beforeAll(async () => {
    h = await startHarness();
    await h.orgCredential();
    await h.services.users.add(h.admin, { name: 'alice', monthlyBudgetMicro: null });
    await h.services.users.add(h.admin, { name: 'worker', role: 'service', monthlyBudgetMicro: null });
  });
  afterAll(() => h.close());

  it('issues a key shown once; list and get carry only its hint; revoke stops it at the gateway within 1 s', async () => {
    const issued = await api('POST', '/admin/v1/keys', {
      user: 'alice',
      name: 'laptop',
      models: ['claude-haiku-4-5'],
      max_tokens: 1000,
      monthly_budget_usd: '10',
      daily_budget_usd: 2,
      rpm: 60,
      expires: '90d',
      env: 'dev',
    });
    expect(issued.status).toBe(201);
    const key = issued.json.key as string;
    expect(key).toMatch(/^tg_/);
    expect(issued.json).toMatchObject({
      user: 'alice',
      name: 'laptop',
      status: 'active',
      scopes: ['inference'],
      models: ['claude-haiku-4-5'],
      max_tokens: 1000,
      monthly_budget_usd: '10.00',
      daily_budget_usd: '2.00',
      rpm: 60,
      environment: 'dev',
      lineage: issued.json.id,
    });
    expect(Date.parse(issued.json.expires_at) - Date.now()).toBeGreaterThan(89 * 86_400_000);

    const listed = await api('GET', '/admin/v1/keys?user=alice');
    expect(listed.json.items.map((k: ApiJson) => k.id)).toEqual([issued.json.id]);
    const got = await api('GET', `/admin/v1/keys/${issued.json.id}`);
    const { key: _once, ...withoutKey } = issued.json;
    expect(got.json).toEqual(withoutKey);
    expect(JSON.stringify([listed.json, got.json])).not.toContain(key);

    const plain = (await api('POST', '/admin/v1/keys', { user: 'alice' })).json;
    await within(1000, () => works(plain.key));
    expect((await api('POST', `/admin/v1/keys/${plain.id}/revoke`)).json.status).toBe('revoked');
    const elapsed = await within(1000, async () => !(await works(plain.key)));
    expect(elapsed).toBeLessThanOrEqual(1000);
    const err = await h
      .client(plain.key)
      .messages.create(PARAMS)
      .catch((e: { status?: number }) => e);
    expect((err as { status?: number }).status).toBe(401);
    expect((await api('POST', `/admin/v1/keys/${plain.id}/revoke`)).status).toBe(409);
    expect((await api('GET', '/admin/v1/keys?status=revoked')).json.items.map((k: ApiJson) => k.id)).toEqual([
      plain.id,
    ]);
  });

  it('validates lists, scopes and amounts like the CLI, naming the field', async () => {
    const refused = async (body: Record<string, unknown>, field: RegExp) => {
      const answer = await api('POST', '/admin/v1/keys', { user: 'alice', ...body });
      expect(answer.status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      expect(answer.json.error.message).toMatch(field);
    };
    const before = (await api('GET', '/admin/v1/keys')).json.items.length;
    await refused({ tools: ['Read', 'bad tool'] }, /tools: "bad tool" is not a valid name/);
    await refused({ models: [] }, /models must name at least one entry/);
    await refused({ scopes: ['root'] }, /scopes/);
    await refused({ scopes: ['act-for-users'] }, /service accounts/);
    await refused({ rpm: 0 }, /rpm/);
    await refused({ daily_budget_usd: '-5' }, /must not be negative/);
    await refused({ daily_budget_usd: '20', monthly_budget_usd: '10' }, /daily budget is larger/);
    await refused({ key_hash: 'x' }, /unknown field key_hash/);
    await refused({ profile: 'nope' }, /no key profile named nope/);
    expect((await api('GET', '/admin/v1/keys')).json.items.length).toBe(before);
    // Positive controls: a service may carry act-for-users; duplicate tools are merged.
    const worker = await api('POST', '/admin/v1/keys', {
      user: 'worker',
      scopes: ['inference', 'act-for-users'],
      tools: ['Read', 'Read', 'Grep'],
    });
    expect(worker.status).toBe(201);
    expect(worker.json).toMatchObject({ scopes: ['inference', 'act-for-users'], tools: ['Read', 'Grep'] });
  });

  it('rotates (new key once, same policy) and sets budgets of the lineage', async () => {
    const first = (await api('POST', '/admin/v1/keys', { user: 'alice', monthly_budget_usd: '5' })).json;
    const rotated = await api('POST', `/admin/v1/keys/${first.id}/rotate`, { grace: '1h' });
    expect(rotated.status).toBe(201);
    expect(rotated.json).toMatchObject({ replaces: first.id, lineage: first.id, monthly_budget_usd: '5.00' });
    expect(rotated.json.key).toMatch(/^tg_/);
    expect(rotated.json.key).not.toBe(first.key);
    // The old key keeps working during the grace period; the new one works too.
    await within(1000, () => works(rotated.json.key));
    expect(await works(first.key)).toBe(true);

    const set = await api('PUT', `/admin/v1/keys/${rotated.json.id}/budget`, {
      period: 'day',
      limit_usd: '1.5',
    });
    expect(set.json).toMatchObject({ daily_budget_usd: '1.50', monthly_budget_usd: '5.00' });
    expect((await api('GET', `/admin/v1/keys/${first.id}`)).json.daily_budget_usd).toBe('1.50');
    const cleared = await api('PUT', `/admin/v1/keys/${first.id}/budget`, {
      period: 'month',
      limit_usd: null,
    });
    expect(cleared.json.monthly_budget_usd).toBeNull();
    expect(
      (await api('PUT', `/admin/v1/keys/${first.id}/budget`, { period: 'year', limit_usd: 1 })).status,
    ).toBe(400);
    expect((await api('GET', '/admin/v1/keys/key_doesnotexist')).status).toBe(404);
  });

  it('never put a key in an answer other than the one that issued it', async () => {
    const keys = seen.flatMap((text) => [...text.matchAll(/"key":"(tg_[A-Za-z0-9]+)"/g)].map((m) => m[1]));
    expect(keys.length).toBeGreaterThan(3);
    for (const key of keys) expect(seen.filter((text) => text.includes(key as string))).toHaveLength(1);
  });
});
