// Rate limits with the SDK's retry behaviour, acting for users, pool failover on 429, and prompt caching `auto`.
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countingClient, type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

describe('gateway policy', () => {
  let h: Harness;
  let orgSecret: string;

  beforeAll(async () => {
    h = await startHarness();
    orgSecret = await h.orgCredential();
  });
  afterAll(() => h.close());

  const counting = (key: string, maxRetries: number) => countingClient(h, key, maxRetries);

  it('a gateway rate limit answers 429 with retry-after and the limit headers; the SDK waits and retries', async () => {
    const key = await h.key({ user: 'rl', policy: { concurrency: 1 } });
    const slow = h.client(key).messages.stream({
      ...PARAMS,
      max_tokens: 40,
      messages: [{ role: 'user', content: 'x [[fake fault=slow-stream delay_ms=40 output_tokens=30]]' }],
    });
    await new Promise((r) => setTimeout(r, 100));
    const raw = await fetch(`${h.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify(PARAMS),
    });
    expect(raw.status).toBe(429);
    expect(raw.headers.get('retry-after')).toBe('1');
    expect(((await raw.json()) as { error: { type: string; message: string } }).error).toMatchObject({
      type: 'rate_limit_error',
    });
    const { client, statuses } = counting(key, 3);
    const message = await client.messages.create(PARAMS);
    expect(message.type).toBe('message');
    expect(statuses[0]).toBe(429);
    expect(statuses.at(-1)).toBe(200);
    await slow.finalMessage();
  });

  it('RPM: at most N requests in any rolling minute, with anthropic-ratelimit-requests-* headers', async () => {
    const key = await h.key({ user: 'rpm', policy: { rpm: 2 } });
    const ok = await fetch(`${h.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify(PARAMS),
    });
    expect(ok.headers.get('anthropic-ratelimit-requests-limit')).toBe('2');
    expect(ok.headers.get('anthropic-ratelimit-requests-remaining')).toBe('1');
    await h.client(key).messages.create(PARAMS);
    const refused = await fetch(`${h.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify(PARAMS),
    });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(50);
    expect(refused.headers.get('anthropic-ratelimit-requests-remaining')).toBe('0');
  });

  it('a budget refusal is not retried by the SDK', async () => {
    await h.services.users.add(h.admin, { name: 'broke', monthlyBudgetMicro: 1 });
    const key = (await h.services.keys.issue(h.admin, { user: 'broke', policy: {} })).key;
    const { client, statuses } = counting(key, 3);
    const error = await client.messages.create(PARAMS).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    expect(statuses).toEqual([429]);
  });

  it('a service key acts for a user: their credential and budgets apply, usage names both', async () => {
    await h.services.users.add(h.admin, { name: 'worker', role: 'service', monthlyBudgetMicro: null });
    const service = (
      await h.services.keys.issue(h.admin, {
        user: 'worker',
        policy: { scopes: ['inference', 'act-for-users'] },
      })
    ).key;
    await h.services.users.add(h.admin, { name: 'byok', monthlyBudgetMicro: null });
    const own = canaryAnthropicKey();
    await h.services.credentials.add(h.admin, {
      name: 'byok-key',
      provider: 'anthropic',
      owner: { type: 'user', name: 'byok' },
      secret: own,
      validate: true,
    });
    await h.refresh();
    const client = new Anthropic({
      apiKey: service,
      baseURL: h.url,
      maxRetries: 0,
      defaultHeaders: { 'x-tollgate-user': 'byok' },
    });
    await client.messages.create(PARAMS);
    expect(h.fake.served.at(-1)?.apiKey).toBe(own);
    const row = (
      await h.installation.db.kysely.selectFrom('usage_records').selectAll().orderBy('at').execute()
    ).at(-1);
    const byok = await h.services.users.get('byok');
    const worker = await h.services.users.get('worker');
    expect(row).toMatchObject({
      user_id: byok.id,
      service_user_id: worker.id,
      credential_id: (await h.services.credentials.get('byok-key')).id,
    });
    // Without the header, the service's own chain (the org key) applies.
    await h.client(service).messages.create(PARAMS);
    expect(h.fake.served.at(-1)?.apiKey).toBe(orgSecret);
    // A plain key may not act for anyone.
    const plain = await h.key({ user: 'plain' });
    const refused = new Anthropic({
      apiKey: plain,
      baseURL: h.url,
      maxRetries: 0,
      defaultHeaders: { 'x-tollgate-user': 'byok' },
    });
    await expect(refused.messages.create(PARAMS)).rejects.toBeInstanceOf(Anthropic.PermissionDeniedError);
  });

  it("a 429 on the user's own key fails over to the org pool", async () => {
    await h.services.users.add(h.admin, { name: 'failover', monthlyBudgetMicro: null });
    const own = canaryAnthropicKey();
    await h.services.credentials.add(h.admin, {
      name: 'failover-key',
      provider: 'anthropic',
      owner: { type: 'user', name: 'failover' },
      secret: own,
      validate: true,
    });
    await h.refresh();
    const key = (await h.services.keys.issue(h.admin, { user: 'failover', policy: {} })).key;
    h.fake.enqueueFault({ kind: 'status', status: 429, retryAfterS: 30 }, { apiKey: own });
    await h.client(key).messages.create(PARAMS);
    const served = h.fake.served.slice(-2);
    expect(served.map((s) => [s.apiKey, s.status])).toEqual([
      [own, 429],
      [orgSecret, 200],
    ]);
  });

  it('prompt caching auto adds a breakpoint to long prompts and reports the savings', async () => {
    const key = await h.key({ user: 'cacher' });
    const system = `Project context. ${'The build uses make and the tests use vitest. '.repeat(500)}`;
    const params = {
      model: 'claude-sonnet-4-6',
      max_tokens: 20,
      system,
      messages: [{ role: 'user' as const, content: 'q' }],
    };
    await h.client(key).messages.create(params);
    const second = await h.client(key).messages.create(params);
    expect(second.usage.cache_read_input_tokens).toBeGreaterThan(1000);
    const rows = (
      await h.installation.db.kysely.selectFrom('usage_records').selectAll().orderBy('at').execute()
    ).slice(-2);
    expect(rows[0]?.cache_write_5m_tokens).toBeGreaterThan(1000);
    expect(rows[0]?.saved_micro).toBeLessThan(0); // the write costs 25 % more
    expect(rows[1]?.saved_micro).toBeGreaterThan(0);
    // A short prompt is left alone.
    await h.client(key).messages.create(PARAMS);
    expect(
      (await h.installation.db.kysely.selectFrom('usage_records').selectAll().orderBy('at').execute()).at(-1)
        ?.cache_write_5m_tokens,
    ).toBe(0);
  });

  it('reports the remaining budget on success', async () => {
    await h.services.users.add(h.admin, { name: 'counted', monthlyBudgetMicro: 1_000_000 });
    const key = (
      await h.services.keys.issue(h.admin, { user: 'counted', policy: { dailyBudgetMicro: 500_000 } })
    ).key;
    const { response } = await h.client(key).messages.create(PARAMS).withResponse();
    const remaining = Number(response.headers.get('x-tollgate-budget-remaining-usd'));
    expect(remaining).toBeGreaterThan(0.49);
    expect(remaining).toBeLessThan(0.5);
  });

  it('injects max_uses into a web search tool without one, and bills the searches', async () => {
    const key = await h.key({ user: 'searcher' });
    const message = await h.client(key).messages.create({
      ...PARAMS,
      tools: [{ type: 'web_search_20250305', name: 'web_search' }],
      messages: [{ role: 'user', content: 'look it up [[fake web_searches=9]]' }],
    });
    // The fake caps searches at max_uses: 5 proves Tollgate injected its default.
    expect(message.usage.server_tool_use?.web_search_requests).toBe(5);
    const row = (
      await h.installation.db.kysely.selectFrom('usage_records').selectAll().orderBy('at').execute()
    ).at(-1);
    expect(row?.web_search_requests).toBe(5);
    expect(row?.cost_micro).toBeGreaterThanOrEqual(5 * 10_000);
  });

  it('refuses what it cannot bound, saying why', async () => {
    const key = await h.key({ user: 'unbounded' });
    const error = await h
      .client(key)
      .messages.create({
        ...PARAMS,
        tools: [{ type: 'code_execution_20250522', name: 'code_execution' } as never],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    expect(String(error)).toMatch(/cannot bound/);
  });

  it('relays stream events as they arrive, not at the end', async () => {
    const key = await h.key({ user: 'streamer' });
    const stream = h.client(key).messages.stream({
      ...PARAMS,
      max_tokens: 40,
      messages: [{ role: 'user', content: 's [[fake fault=slow-stream delay_ms=60 output_tokens=20]]' }],
    });
    const before = h.fake.served.length;
    let seenWhileUpstreamOpen = 0;
    stream.on('text', () => {
      // The fake records a stream only when it ends: text seen before that was relayed live.
      if (h.fake.served.length === before) seenWhileUpstreamOpen++;
    });
    await stream.finalMessage();
    expect(seenWhileUpstreamOpen).toBeGreaterThanOrEqual(15);
  });

  it('matches allowed models in bare, dated and -latest forms alike', async () => {
    const dated = await h.key({
      user: 'dated',
      policy: { models: ['claude-haiku-4-5-20251001', 'claude-3-5-haiku-latest'] },
    });
    await h.client(dated).messages.create({ ...PARAMS, model: 'claude-haiku-4-5' });
    await h.client(dated).messages.create({ ...PARAMS, model: 'claude-3-5-haiku-20241022' });
    await expect(
      h.client(dated).messages.create({ ...PARAMS, model: 'claude-sonnet-4-6' }),
    ).rejects.toBeInstanceOf(Anthropic.PermissionDeniedError);
  });
});
