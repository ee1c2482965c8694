// Upstream faults: each gives the documented client outcome and a correct usage record.
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countingClient, type Harness, startHarness } from '../helpers/gateway.js';

const PARAMS = {
  model: 'claude-sonnet-4-6',
  max_tokens: 200,
  messages: [{ role: 'user' as const, content: 'hello' }],
};

describe('upstream faults', () => {
  let h: Harness;
  let key: string;
  let orgSecret: string;

  beforeAll(async () => {
    h = await startHarness({ env: { TOLLGATE_UPSTREAM_TIMEOUT_MS: '1500' } });
    orgSecret = await h.orgCredential();
    key = await h.key();
  });
  beforeEach(() => h.fake.reset());
  afterAll(() => h.close());

  const rows = () =>
    h.installation.db.kysely
      .selectFrom('usage_records')
      .selectAll()
      .where('endpoint', '=', 'messages')
      .orderBy('at')
      .execute();
  const lastRows = async (n: number) => (await rows()).slice(-n);

  const counting = (maxRetries: number) => countingClient(h, key, maxRetries);

  it('upstream 429 with retry-after reaches the client (one pool) and is recorded', async () => {
    h.fake.enqueueFault({ kind: 'status', status: 429, retryAfterS: 3 });
    const { client, statuses } = counting(0);
    const error = await client.messages.create(PARAMS).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    expect((error as InstanceType<typeof Anthropic.RateLimitError>).headers?.get('retry-after')).toBe('3');
    expect(statuses).toEqual([429]);
    const [row] = await lastRows(1);
    expect(row).toMatchObject({ status: 429, cost_micro: 0, outcome: 'upstream_error' });
  });

  it('529 and 500 are retried by Tollgate; a later success is what the client sees', async () => {
    h.fake.enqueueFault({ kind: 'status', status: 529 });
    h.fake.enqueueFault({ kind: 'status', status: 500 });
    const message = await h.client(key).messages.create(PARAMS);
    expect(message.type).toBe('message');
    const last = await lastRows(3);
    expect(last.map((r) => r.status)).toEqual([529, 500, 200]);
    expect(last[2]?.cost_micro).toBeGreaterThan(0);
    expect(last[2]?.attempts).toBe(3);
  });

  it('after Tollgate retried, a persistent 529 tells the client not to retry', async () => {
    h.fake.setDefaultFault({ kind: 'status', status: 529 });
    const { client, statuses } = counting(2);
    const error = await client.messages.create(PARAMS).catch((e: unknown) => e);
    h.fake.setDefaultFault(null);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    expect(statuses).toEqual([529]); // x-should-retry: false stopped the SDK from multiplying attempts
    expect(h.fake.served.filter((s) => s.path === '/v1/messages')).toHaveLength(3);
  });

  it('a connection reset after sending is not retried (it may have been billed): 502', async () => {
    h.fake.enqueueFault({ kind: 'reset' });
    const { client, statuses } = counting(0);
    const error = await client.messages.create(PARAMS).catch((e: unknown) => e);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(502);
    expect(statuses).toEqual([502]);
    expect(h.fake.served.filter((s) => s.path === '/v1/messages')).toHaveLength(1);
    const [row] = await lastRows(1);
    expect(row).toMatchObject({ status: 0, outcome: 'connection_lost' });
  });

  it('a JSON answer cut mid-body is charged and recorded at the reserved worst case: 502', async () => {
    const spent = () =>
      h.installation.db.kysely
        .selectFrom('spend')
        .select((eb) => eb.fn.sum<number>('spent_micro').as('total'))
        .where('scope_type', '=', 'org')
        .executeTakeFirstOrThrow();
    const before = Number((await spent()).total ?? 0);
    const error = await h
      .client(key)
      .messages.create({
        ...PARAMS,
        messages: [{ role: 'user', content: 'hi [[fake fault=reset-midstream]]' }],
      })
      .catch((e: unknown) => e);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(502);
    const [row] = await lastRows(1);
    // The upstream billed it and its usage never arrived: never under-counted. 200 output tokens at
    // Sonnet's $15/MTok alone are 3,000 µUSD.
    expect(row).toMatchObject({ status: 200, outcome: 'connection_lost', estimated: 1, input_tokens: 0 });
    expect(row?.cost_micro).toBeGreaterThan(3_000);
    expect(Number((await spent()).total) - before).toBe(row?.cost_micro);
  });

  it('a hanging upstream times out with 504 timeout_error', async () => {
    h.fake.enqueueFault({ kind: 'hang' });
    const error = await h
      .client(key)
      .messages.create(PARAMS)
      .catch((e: unknown) => e);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(504);
    expect(
      ((error as InstanceType<typeof Anthropic.APIError>).error as { error: { type: string } }).error.type,
    ).toBe('timeout_error');
    const [row] = await lastRows(1);
    expect(row).toMatchObject({ status: 0, outcome: 'timeout' });
  });

  it('a mid-stream error event is relayed and recorded as partial and estimated', async () => {
    const stream = h.client(key).messages.stream({
      ...PARAMS,
      messages: [
        { role: 'user', content: 'go [[fake fault=midstream-error after_tokens=7 output_tokens=100]]' },
      ],
    });
    let text = '';
    stream.on('text', (t) => {
      text += t;
    });
    const error = await stream.finalMessage().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect(text.split('tok').length - 1).toBe(7);
    const [row] = await lastRows(1);
    expect(row).toMatchObject({
      status: 200,
      stream: 1,
      partial: 1,
      estimated: 1,
      outcome: 'midstream_error',
    });
    expect(row?.output_tokens).toBeGreaterThanOrEqual(7);
    expect(row?.cost_micro).toBeGreaterThan(0);
  });

  it('a client abort mid-stream aborts the upstream and records a conservative estimate', async () => {
    const controller = new AbortController();
    const stream = h.client(key).messages.stream(
      {
        ...PARAMS,
        messages: [
          { role: 'user', content: 'slow [[fake fault=slow-stream delay_ms=30 output_tokens=150]]' },
        ],
      },
      { signal: controller.signal },
    );
    let deltas = 0;
    stream.on('text', () => {
      deltas++;
      if (deltas === 5) controller.abort();
    });
    await stream.finalMessage().catch(() => {});
    const [served] = await h.fake.waitForServed(1, 5000);
    expect(served?.outcome).toBe('client-aborted');
    await new Promise((r) => setTimeout(r, 200));
    const [row] = await lastRows(1);
    expect(row).toMatchObject({ stream: 1, partial: 1, estimated: 1, outcome: 'client_aborted' });
    expect(row?.output_tokens).toBeGreaterThanOrEqual(5);
    expect(row?.output_tokens).toBeLessThan(150);
  });

  it('an upstream 401 fails over to the next; a confirmed one marks the credential invalid, audited', async () => {
    const spare = await h.orgCredential('org-spare');
    await h.refresh();
    h.fake.revokeKey(orgSecret);
    const message = await h.client(key).messages.create(PARAMS);
    expect(message.type).toBe('message');
    const served = h.fake.served.filter((s) => s.path === '/v1/messages');
    expect(served.map((s) => [s.apiKey, s.status])).toEqual([
      [orgSecret, 401],
      [spare, 200],
    ]);
    // Marked once the credential's own validation call (off the request path) confirmed the 401.
    await h.gateway.deps.credentials.settled();
    await h.refresh();
    const creds = await h.services.credentials.list();
    expect(creds.find((c) => c.name === 'org-key')?.status).toBe('invalid');
    const audit = await h.services.audit.list({ limit: 1000 });
    expect(audit.some((e) => e.action === 'credential.invalid')).toBe(true);
    // Later requests go straight to the remaining credential.
    await h.client(key).messages.create(PARAMS);
    expect(h.fake.served.at(-1)?.apiKey).toBe(spare);
  });
});
