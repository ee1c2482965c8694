// Bring-your-own-key policy (product.md §5): under `byok: required` — the user's own, else the team's —
// only the user's own Anthropic credentials serve; a user without one gets 403 saying so, on every
// route that calls upstream. And x-tollgate-credential-source on every answer a credential served.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayGet, gatewayPost, ownCredential, setUserByok } from '../helpers/byok.js';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';

const PARAMS = { model: 'claude-haiku-4-5', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] };
const BYOK_MESSAGE =
  'this user must bring their own Anthropic key (byok: required); add it with PUT /api/v1/me/credentials/anthropic';

describe('byok policy and credential source', () => {
  let h: Harness;
  let orgSecret: string;

  beforeAll(async () => {
    h = await startHarness();
    orgSecret = await h.orgCredential();
  });
  afterAll(() => h.close());

  const messages = (key: string, headers: Record<string, string> = {}) =>
    gatewayPost(h, '/v1/messages', key, PARAMS, headers);

  async function refusal(answer: Response): Promise<{ status: number; error: ApiJson }> {
    const body = (await answer.json()) as ApiJson;
    return { status: answer.status, error: body.error };
  }

  it('preferred (the default) without an own key: the org key serves, header org', async () => {
    const key = await h.key({ user: 'pat' });
    const answer = await messages(key);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-tollgate-credential-source')).toBe('org');
    expect(h.fake.served.at(-1)?.apiKey).toBe(orgSecret);
  });

  it('required without an own key: 403 saying so, nothing sent upstream; with one: 200 from it, header user', async () => {
    const key = await h.key({ user: 'rita' });
    await setUserByok(h, 'rita', 'required');
    const before = h.fake.served.length;
    expect(await refusal(await messages(key))).toEqual({
      status: 403,
      error: { type: 'permission_error', message: BYOK_MESSAGE },
    });
    expect(h.fake.served.length).toBe(before);
    // Control: the same user and key once rita brings her own key.
    const own = await ownCredential(h, { type: 'user', name: 'rita' });
    const answer = await messages(key);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-tollgate-credential-source')).toBe('user');
    expect(h.fake.served.at(-1)?.apiKey).toBe(own);
  });

  it("required never falls back: a 429 on the user's own key is passed on, not retried with the org key", async () => {
    const key = await h.key({ user: 'rob' });
    const own = await ownCredential(h, { type: 'user', name: 'rob' });
    await setUserByok(h, 'rob', 'required');
    h.fake.enqueueFault({ kind: 'status', status: 429, retryAfterS: 30 }, { apiKey: own });
    const before = h.fake.served.length;
    const answer = await messages(key);
    expect(answer.status).toBe(429);
    // An upstream error answer passed through still says whose credential answered.
    expect(answer.headers.get('x-tollgate-credential-source')).toBe('user');
    expect(h.fake.served.slice(before).map((s) => s.apiKey)).toEqual([own]);
    // Control: preferred, the same 429 fails over to the org pool.
    await setUserByok(h, 'rob', 'preferred');
    h.fake.enqueueFault({ kind: 'status', status: 429, retryAfterS: 30 }, { apiKey: own });
    const after = h.fake.served.length;
    const served = await messages(key);
    expect(served.status).toBe(200);
    expect(served.headers.get('x-tollgate-credential-source')).toBe('org');
    expect(h.fake.served.slice(after).map((s) => s.apiKey)).toEqual([own, orgSecret]);
  });

  it("a team's required applies to its members (no team or org key); a member's own preferred overrides it", async () => {
    const member = await h.key({ user: 'tess', team: 'vault' });
    const teamSecret = await ownCredential(h, { type: 'team', name: 'vault' });
    const holder = await h.key({ user: 'tom', team: 'vault' });
    const tomSecret = await ownCredential(h, { type: 'user', name: 'tom' });
    // Preferred team: the team's key serves its member, header team.
    const first = await messages(member);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-tollgate-credential-source')).toBe('team');
    expect(h.fake.served.at(-1)?.apiKey).toBe(teamSecret);
    // The team turns required: a running gateway applies it through the change feed.
    await h.services.teams.update(h.admin, 'vault', { byok: 'required' });
    await h.refresh();
    expect(await refusal(await messages(member))).toEqual({
      status: 403,
      error: { type: 'permission_error', message: BYOK_MESSAGE },
    });
    // Control: a member of the same team with an own key is served by it.
    const tom = await messages(holder);
    expect(tom.status).toBe(200);
    expect(tom.headers.get('x-tollgate-credential-source')).toBe('user');
    expect(h.fake.served.at(-1)?.apiKey).toBe(tomSecret);
    // The user's own setting wins over the team's: preferred again, the team's key serves.
    await setUserByok(h, 'tess', 'preferred');
    const back = await messages(member);
    expect(back.status).toBe(200);
    expect(back.headers.get('x-tollgate-credential-source')).toBe('team');
    // null inherits the team's again.
    await setUserByok(h, 'tess', null);
    expect((await messages(member)).status).toBe(403);
  });

  it("a pin counts under required only if it is the user's own; header key for a pinned credential", async () => {
    await h.key({ user: 'pia' });
    const own = await ownCredential(h, { type: 'user', name: 'pia' });
    await setUserByok(h, 'pia', 'required');
    const pinnedOwn = await h.key({ user: 'pia', credential: 'pia-own' });
    const pinnedOrg = await h.key({ user: 'pia', credential: 'org-key' });
    const mine = await messages(pinnedOwn);
    expect(mine.headers.get('x-tollgate-credential-source')).toBe('key');
    expect(h.fake.served.at(-1)?.apiKey).toBe(own);
    // Pinned to the org key: passed over, the user's own serves instead.
    const org = await messages(pinnedOrg);
    expect(org.status).toBe(200);
    expect(org.headers.get('x-tollgate-credential-source')).toBe('user');
    expect(h.fake.served.at(-1)?.apiKey).toBe(own);
    // Control: preferred honours the org pin.
    await setUserByok(h, 'pia', 'preferred');
    const pinned = await messages(pinnedOrg);
    expect(pinned.headers.get('x-tollgate-credential-source')).toBe('key');
    expect(h.fake.served.at(-1)?.apiKey).toBe(orgSecret);
  });

  it('the refusal names the key environment when it has one', async () => {
    const key = await h.key({ user: 'eve', policy: { environment: 'prod' } });
    await setUserByok(h, 'eve', 'required');
    const { status, error } = await refusal(await messages(key));
    expect(status).toBe(403);
    expect(error.message).toBe(
      'this user must bring their own Anthropic key for environment prod (byok: required); add it with PUT /api/v1/me/credentials/anthropic',
    );
  });

  it('count_tokens and models: the same refusal without an own key; with one, served by it, header user', async () => {
    const key = await h.key({ user: 'cora' });
    await setUserByok(h, 'cora', 'required');
    const count = () =>
      gatewayPost(h, '/v1/messages/count_tokens', key, { model: PARAMS.model, messages: PARAMS.messages });
    for (const answer of [
      await count(),
      await gatewayGet(h, '/v1/models', key),
      await gatewayGet(h, `/v1/models/${PARAMS.model}`, key),
    ]) {
      expect(await refusal(answer)).toEqual({
        status: 403,
        error: { type: 'permission_error', message: BYOK_MESSAGE },
      });
    }
    const own = await ownCredential(h, { type: 'user', name: 'cora' });
    for (const answer of [
      await count(),
      await gatewayGet(h, '/v1/models', key),
      await gatewayGet(h, `/v1/models/${PARAMS.model}`, key),
    ]) {
      expect(answer.status).toBe(200);
      expect(answer.headers.get('x-tollgate-credential-source')).toBe('user');
      expect(h.fake.served.at(-1)?.apiKey).toBe(own);
    }
    // Control: a preferred user's free routes are served by the org key.
    const other = await h.key({ user: 'cody' });
    const models = await gatewayGet(h, '/v1/models', other);
    expect(models.status).toBe(200);
    expect(models.headers.get('x-tollgate-credential-source')).toBe('org');
  });

  it('streams carry the header too', async () => {
    const key = await h.key({ user: 'sam' });
    const answer = await gatewayPost(h, '/v1/messages', key, { ...PARAMS, stream: true });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toContain('text/event-stream');
    expect(answer.headers.get('x-tollgate-credential-source')).toBe('org');
    expect(await answer.text()).toContain('message_stop');
  });

  it("a service acting for a required user: the user's policy applies, not the service's", async () => {
    await h.services.users.add(h.admin, { name: 'agent', role: 'service', monthlyBudgetMicro: null });
    // The service's key is pinned to the org key: acting for a required user, the pin is passed over.
    const service = (
      await h.services.keys.issue(h.admin, {
        user: 'agent',
        policy: { scopes: ['inference', 'act-for-users'] },
        credential: 'org-key',
      })
    ).key;
    await h.key({ user: 'nina' });
    await setUserByok(h, 'nina', 'required');
    const forNina = { 'x-tollgate-user': 'nina' };
    expect(await refusal(await messages(service, forNina))).toEqual({
      status: 403,
      error: { type: 'permission_error', message: BYOK_MESSAGE },
    });
    // Control: the service for itself (preferred) is served by its pinned org key.
    const itself = await messages(service);
    expect(itself.status).toBe(200);
    expect(itself.headers.get('x-tollgate-credential-source')).toBe('key');
    const own = await ownCredential(h, { type: 'user', name: 'nina' });
    const served = await messages(service, forNina);
    expect(served.status).toBe(200);
    expect(served.headers.get('x-tollgate-credential-source')).toBe('user');
    expect(h.fake.served.at(-1)?.apiKey).toBe(own);
  });
});
