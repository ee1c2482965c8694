// A service acting for two users (product.md §5, "On behalf of users"): one brings their own Anthropic
// key, one does not. Each request must use that user's credential chain and budgets, name the user and
// the service in its usage record, and say in x-tollgate-credential-source which level served it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayPost, ownCredential } from '../helpers/byok.js';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';

const PARAMS = { model: 'claude-haiku-4-5', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] };

describe('a service acting for two users', () => {
  let h: Harness;
  let orgSecret: string;
  let aliceSecret: string;
  let service: string;
  let ids: Record<string, string>;

  beforeAll(async () => {
    h = await startHarness();
    orgSecret = await h.orgCredential();
    await h.services.users.add(h.admin, { name: 'worker', role: 'service', monthlyBudgetMicro: null });
    // Budgets far apart, so the remaining-budget header shows whose applied.
    await h.services.users.add(h.admin, { name: 'alice', monthlyBudgetMicro: 2_000_000 });
    await h.services.users.add(h.admin, { name: 'bob', monthlyBudgetMicro: 7_000_000 });
    // A budget below any request's worst case: refuses carol's requests only.
    await h.services.users.add(h.admin, { name: 'carol', monthlyBudgetMicro: 1 });
    aliceSecret = await ownCredential(h, { type: 'user', name: 'alice' });
    service = (
      await h.services.keys.issue(h.admin, {
        user: 'worker',
        policy: { scopes: ['inference', 'act-for-users'] },
      })
    ).key;
    ids = {};
    for (const name of ['worker', 'alice', 'bob', 'carol']) ids[name] = (await h.services.users.get(name)).id;
  });
  afterAll(() => h.close());

  const asUser = (name: string, body: unknown = PARAMS) =>
    gatewayPost(h, '/v1/messages', service, body, { 'x-tollgate-user': name });

  async function lastRecord(): Promise<ApiJson> {
    const rows = await h.installation.db.kysely
      .selectFrom('usage_records')
      .selectAll()
      .orderBy('at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    return rows[0];
  }

  it("alice's own key serves alice: the upstream sees exactly it, the header says user, the record names both", async () => {
    const answer = await asUser('alice');
    expect(answer.status).toBe(200);
    const requestId = answer.headers.get('x-tollgate-request-id');
    expect(answer.headers.get('x-tollgate-credential-source')).toBe('user');
    expect(h.fake.served.at(-1)?.apiKey).toBe(aliceSecret);
    // alice's $2 budget is the most restrictive one that applies (org and the service key have none).
    expect(Number(answer.headers.get('x-tollgate-budget-remaining-usd'))).toBeLessThan(2);
    const row = await h.installation.db.kysely
      .selectFrom('usage_records')
      .selectAll()
      .where('id', '=', requestId ?? '')
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      user_id: ids.alice,
      service_user_id: ids.worker,
      credential_id: (await h.services.credentials.get('alice-own')).id,
      status: 200,
    });
  });

  it('bob has no key of his own: the org key serves him, the header says org, the record names both', async () => {
    const answer = await asUser('bob');
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-tollgate-credential-source')).toBe('org');
    expect(h.fake.served.at(-1)?.apiKey).toBe(orgSecret);
    // bob's own $7 budget applies, not alice's $2.
    const remaining = Number(answer.headers.get('x-tollgate-budget-remaining-usd'));
    expect(remaining).toBeGreaterThan(2);
    expect(remaining).toBeLessThan(7);
    const row = await lastRecord();
    expect(row).toMatchObject({
      id: answer.headers.get('x-tollgate-request-id'),
      user_id: ids.bob,
      service_user_id: ids.worker,
      credential_id: (await h.services.credentials.get('org-key')).id,
    });
  });

  it("carol's budget refuses carol only; alice and bob pass at the same moment", async () => {
    const before = h.fake.served.length;
    const [carol, alice, bob] = await Promise.all([asUser('carol'), asUser('alice'), asUser('bob')]);
    expect(carol.status).toBe(429);
    const body = (await carol.json()) as ApiJson;
    expect(body.error.type).toBe('rate_limit_error');
    expect(body.error.message).toContain('budget of user carol');
    expect(body.error.details).toMatchObject({ error_code: 'enforced_spend_limit_reached', scope: 'user' });
    expect([alice.status, bob.status]).toEqual([200, 200]);
    // Carol's request never reached the upstream: two served, with alice's and the org's key.
    const served = h.fake.served.slice(before).map((s) => s.apiKey);
    expect(served.sort()).toEqual([aliceSecret, orgSecret].sort());
  });

  it('an unknown user name is refused; the service without the header uses its own chain', async () => {
    const unknown = await asUser('nobody');
    expect(unknown.status).toBe(403);
    const own = await gatewayPost(h, '/v1/messages', service, PARAMS);
    expect(own.status).toBe(200);
    expect(own.headers.get('x-tollgate-credential-source')).toBe('org');
    const row = await lastRecord();
    expect(row).toMatchObject({ user_id: ids.worker, service_user_id: null });
  });
});
