// POST /api/v1/me/keys: a person signed in to the dashboard issues themselves a key within their key
// ceiling (the default one, or a profile an admin set). Values left out inherit the ceiling's; each
// value beyond it is refused naming the field and the ceiling's value; a gateway key cannot mint keys.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SessionClient, signIn } from '../helpers/browser-session.js';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';

let h: Harness;
const hello = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};
const DAY = 86_400_000;

beforeAll(async () => {
  h = await startHarness();
  await h.orgCredential();
  const profile = await h.api('POST', '/admin/v1/profiles', {
    body: {
      name: 'bounded',
      models: ['claude-haiku-4-5'],
      tools: ['Read', 'Grep'],
      max_tokens: 1000,
      max_cost_per_request_usd: '0.50',
      monthly_budget_usd: '10',
      daily_budget_usd: '2',
      expires: '30d',
      scopes: ['inference'],
    },
  });
  expect(profile.status, JSON.stringify(profile.json)).toBe(201);
});
afterAll(() => h.close());

/** A person with a password, signed in through an invite link. */
async function person(name: string, monthlyBudgetUsd: string | null = null): Promise<SessionClient> {
  await h.services.users.add(h.admin, {
    name,
    monthlyBudgetMicro: monthlyBudgetUsd === null ? null : Number(monthlyBudgetUsd) * 1_000_000,
  });
  const invite = await h.services.invites.issue(h.admin, name);
  return signIn(h.url, new URL(invite.url).pathname, { password: 'correct horse battery' });
}

const issue = (s: SessionClient, body: unknown) => s.call('POST', '/api/v1/me/keys', { body });
const adminView = async (id: string): Promise<ApiJson> => (await h.api('GET', `/admin/v1/keys/${id}`)).json;

describe('the default ceiling', () => {
  let s: SessionClient;
  beforeAll(async () => {
    s = await person('dana', '5');
  });

  it('issues a key shown once that works at the gateway, audited as the person', async () => {
    const r = await issue(s, { name: 'laptop' });
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    expect(r.json).toMatchObject({ name: 'laptop', status: 'active', scopes: ['inference', 'self-service'] });
    expect(r.json.key).toMatch(/^tg_/);
    // Left out: the most the ceiling allows, i.e. security.key_max_age_days (90).
    expect(Date.parse(r.json.expires_at) - Date.now()).toBeGreaterThan(89 * DAY);
    expect(Date.parse(r.json.expires_at) - Date.now()).toBeLessThanOrEqual(90 * DAY);
    await h.refresh();
    expect((await h.client(r.json.key).messages.create(hello)).id).toBeTruthy();
    const listed = await s.call('GET', '/api/v1/me/keys');
    expect(listed.json.items.map((k: ApiJson) => k.id)).toContain(r.json.id);
    expect(JSON.stringify(listed.json)).not.toContain(r.json.key);
    expect((await adminView(r.json.id)).created_by).toBe('user:dana');
  });

  it('takes values within it, and refuses act-for-users, an expiry beyond the key age and a budget above the own', async () => {
    const ok = await issue(s, {
      models: ['claude-haiku-4-5'],
      scopes: ['inference'],
      monthly_budget_usd: '5',
      daily_budget_usd: '1',
      expires: '90d',
      environment: 'dev',
    });
    expect(ok.status, JSON.stringify(ok.json)).toBe(201);
    expect(ok.json).toMatchObject({ scopes: ['inference'], monthly_budget_usd: '5.00', environment: 'dev' });

    const acting = await issue(s, { scopes: ['inference', 'act-for-users'] });
    expect(acting.status).toBe(403);
    expect(acting.json.error.message).toMatch(/scopes: act-for-users is never self-issued/);
    const long = await issue(s, { expires: '91d' });
    expect(long.status).toBe(403);
    expect(long.json.error.message).toMatch(
      /expires is beyond your key ceiling \(the default ceiling: 90d\)/,
    );
    const over = await issue(s, { monthly_budget_usd: '5.01' });
    expect(over.status).toBe(403);
    expect(over.json.error.message).toMatch(/monthly_budget_usd .*own monthly budget \(\$5/);
    const overDaily = await issue(s, { daily_budget_usd: '6' });
    expect(overDaily.status).toBe(403);
    expect(overDaily.json.error.message).toMatch(/daily_budget_usd/);
  });

  it('refuses unknown fields (strict body)', async () => {
    expect((await issue(s, { rpm: 5 })).status).toBe(400);
    expect((await issue(s, { user: 'someone-else' })).status).toBe(400);
  });
});

describe('a ceiling profile', () => {
  let s: SessionClient;
  beforeAll(async () => {
    s = await person('cato');
    const set = await h.api('PATCH', '/admin/v1/users/cato', { body: { key_ceiling: 'bounded' } });
    expect(set.json.key_ceiling).toBe('bounded');
  });

  it('gives a key left unspecified exactly the ceiling', async () => {
    const r = await issue(s, {});
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    const k = await adminView(r.json.id);
    expect(k).toMatchObject({
      scopes: ['inference'],
      models: ['claude-haiku-4-5'],
      tools: ['Read', 'Grep'],
      max_tokens: 1000,
      max_cost_per_request_usd: '0.50',
      monthly_budget_usd: '10.00',
      daily_budget_usd: '2.00',
    });
    expect(Date.parse(k.expires_at) - Date.now()).toBeLessThanOrEqual(30 * DAY);
    expect(Date.parse(k.expires_at) - Date.now()).toBeGreaterThan(29 * DAY);
  });

  it('takes narrower values', async () => {
    const r = await issue(s, {
      tools: ['Read'],
      max_tokens: 500,
      max_cost_per_request_usd: '0.25',
      monthly_budget_usd: '3',
      daily_budget_usd: '1',
      expires: '7d',
    });
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    expect(await adminView(r.json.id)).toMatchObject({
      tools: ['Read'],
      max_tokens: 500,
      monthly_budget_usd: '3.00',
    });
  });

  const beyond: Array<[string, Record<string, unknown>, RegExp]> = [
    ['models', { models: ['claude-sonnet-4-6'] }, /models .*profile bounded: claude-haiku-4-5/],
    ['tools', { tools: ['Read', 'Bash'] }, /tools .*profile bounded: Read, Grep/],
    ['max_tokens', { max_tokens: 1001 }, /max_tokens .*profile bounded: 1000/],
    ['max_cost_per_request_usd', { max_cost_per_request_usd: '0.51' }, /max_cost_per_request_usd .*\$0\.5/],
    ['monthly_budget_usd', { monthly_budget_usd: '10.01' }, /monthly_budget_usd .*\$10/],
    ['daily_budget_usd', { daily_budget_usd: '2.5' }, /daily_budget_usd .*\$2/],
    ['scopes', { scopes: ['inference', 'self-service'] }, /scopes .*profile bounded: inference/],
    ['expires', { expires: '31d' }, /expires .*30d/],
  ];
  for (const [field, body, message] of beyond) {
    it(`refuses ${field} beyond the ceiling, naming it`, async () => {
      const r = await issue(s, body);
      expect(r.status, JSON.stringify(r.json)).toBe(403);
      expect(r.json.error.message).toMatch(message);
    });
  }
});

describe('who may issue', () => {
  it('refuses a self-service key and an inference key, beside the session that succeeds', async () => {
    const s = await person('finn');
    const selfKey = await h.key({ user: 'finn', policy: { scopes: ['inference', 'self-service'] } });
    const inferenceKey = await h.key({ user: 'finn' });
    const byKey = await h.api('POST', '/api/v1/me/keys', { token: selfKey, body: { name: 'minted' } });
    expect(byKey.status).toBe(403);
    expect(byKey.json.error.message).toMatch(/dashboard session/);
    expect((await h.api('POST', '/api/v1/me/keys', { token: inferenceKey, body: {} })).status).toBe(403);
    expect((await issue(s, { name: 'minted' })).status).toBe(201);
  });

  it('refuses a 21st active key, and issues again once one is revoked', async () => {
    const s = await person('gus');
    const ids: string[] = [];
    for (let i = 0; i < 20; i++)
      ids.push((await h.services.keys.issue(h.admin, { user: 'gus', policy: {} })).id);
    const refused = await issue(s, {});
    expect(refused.status).toBe(403);
    expect(refused.json.error.message).toMatch(/20 active keys/);
    const first = ids[0] ?? '';
    expect((await s.call('DELETE', `/api/v1/me/keys/${first}`)).status).toBe(200);
    expect((await issue(s, {})).status).toBe(201);
  });
});
