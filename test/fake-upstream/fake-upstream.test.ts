import Anthropic, { APIError } from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countInputTokens, FAKE_MODELS, type FakeUpstream, startFakeUpstream } from './index.js';

const KEY = 'sk-ant-api03-test-alice';
const ADMIN = 'sk-ant-admin01-test-root';
const MODEL = 'claude-sonnet-4-6';

let fake: FakeUpstream;
let client: Anthropic;

function sdk(apiKey = KEY, timeout?: number): Anthropic {
  return new Anthropic({ apiKey, baseURL: fake.url, maxRetries: 0, ...(timeout ? { timeout } : {}) });
}

beforeAll(async () => {
  fake = await startFakeUpstream();
  client = sdk();
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());

describe('messages', () => {
  it('answers JSON with deterministic usage and records the request', async () => {
    const body = {
      model: MODEL,
      max_tokens: 100,
      system: 'Be brief.',
      messages: [{ role: 'user' as const, content: 'Hello there' }],
    };
    const msg = await client.messages.create(body);
    expect(msg.content).toEqual([{ type: 'text', text: 'tok '.repeat(20) }]);
    expect(msg.stop_reason).toBe('end_turn');
    // system "Be brief." = ceil(9/4)=3, message 3 + ceil(11/4)=3
    expect(countInputTokens(body)).toBe(9);
    expect(msg.usage).toMatchObject({
      input_tokens: 9,
      output_tokens: 20,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
      server_tool_use: { web_search_requests: 0, web_fetch_requests: 0 },
      service_tier: 'standard',
    });
    const [rec] = fake.served;
    expect(rec).toMatchObject({
      method: 'POST',
      path: '/v1/messages',
      apiKey: KEY,
      model: MODEL,
      stream: false,
      status: 200,
      outcome: 'complete',
      outputTokensSent: 20,
      headers: { anthropicVersion: '2026-10-21', authorization: 'bearer' },
    });
    expect(rec?.rawHeaders.authorization).toBe(`Bearer ${KEY}`);
    expect(rec?.requestId).toMatch(/^req_fake_\d+$/);
  });

  it('clips output at max_tokens and honours output and web-search directives', async () => {
    const msg = await client.messages.create({
      model: 'claude-haiku-4-5', // bare alias of a dated entry
      max_tokens: 5,
      tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 2 }],
      messages: [{ role: 'user', content: 'go [[fake output_tokens=50 web_searches=3]]' }],
    });
    expect(msg.stop_reason).toBe('max_tokens');
    expect(msg.usage.output_tokens).toBe(5);
    expect(msg.usage.server_tool_use?.web_search_requests).toBe(2);
  });

  it('streams SSE the SDK can assemble, with cumulative final usage', async () => {
    const stream = client.messages.stream({
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: 'user', content: 'hi [[fake output_tokens=7]]' }],
    });
    let text = '';
    stream.on('text', (t) => {
      text += t;
    });
    const final = await stream.finalMessage();
    expect(text).toBe('tok '.repeat(7));
    expect(final.usage.output_tokens).toBe(7);
    expect(final.usage.input_tokens).toBe(3 + Math.ceil('hi [[fake output_tokens=7]]'.length / 4));
    expect(fake.served[0]).toMatchObject({ stream: true, outcome: 'complete', outputTokensSent: 7 });
  });

  it('writes the SSE wire format event by event', async () => {
    const local = await startFakeUpstream({ streamChunkTokens: 3 });
    try {
      const res = await fetch(`${local.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'anthropic-beta': 'a-1, b-2' },
        body: JSON.stringify({
          model: MODEL,
          max_tokens: 100,
          stream: true,
          messages: [{ role: 'user', content: '[[fake output_tokens=7]]' }],
        }),
      });
      expect(res.headers.get('content-type')).toBe('text/event-stream');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(res.headers.get('request-id')).toMatch(/^req_fake_/);
      const frames = (await res.text()).split('\n\n').filter((f) => f !== '');
      const events = frames.map((f) => /^event: (\S+)\ndata: /.exec(f)?.[1]);
      expect(events).toEqual([
        'message_start',
        'content_block_start',
        'ping',
        'content_block_delta',
        'content_block_delta',
        'content_block_delta',
        'content_block_stop',
        'message_delta',
        'message_stop',
      ]);
      const data = frames.map((f) => JSON.parse(f.slice(f.indexOf('data: ') + 6)) as Record<string, unknown>);
      expect(data[0]).toMatchObject({ message: { usage: { input_tokens: 9, output_tokens: 1 } } });
      expect(data.slice(3, 6).map((d) => (d.delta as { text: string }).text)).toEqual([
        'tok tok tok ',
        'tok tok tok ',
        'tok ',
      ]);
      expect(data[7]).toMatchObject({
        delta: { stop_reason: 'end_turn' },
        usage: { input_tokens: 9, output_tokens: 7 },
      });
      expect(local.served[0]?.headers).toEqual({
        anthropicVersion: '2023-06-01',
        anthropicBeta: ['a-1', 'b-2'],
        authorization: 'x-api-key',
      });
    } finally {
      await local.close();
    }
  });

  it('counts tokens with the same rules', async () => {
    const body = {
      model: MODEL,
      tools: [{ name: 'get_weather', input_schema: { type: 'object' as const } }],
      messages: [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'Weather in Zürich?' }] }],
    };
    const { input_tokens } = await client.messages.countTokens(body);
    expect(input_tokens).toBe(countInputTokens(body));
    expect(input_tokens).toBe(Math.ceil(JSON.stringify(body.tools[0]).length / 4) + 3 + 5);
  });

  it('rejects invalid bodies and unknown models', async () => {
    const res = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    await expect(
      client.messages.create({
        model: 'claude-nope-9',
        max_tokens: 1,
        messages: [{ role: 'user', content: 'x' }],
      }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });
});

describe('prompt caching', () => {
  const cached = (ttl?: '1h') => ({
    model: MODEL,
    max_tokens: 10,
    system: [
      {
        type: 'text' as const,
        text: 'x'.repeat(400),
        cache_control: { type: 'ephemeral' as const, ...(ttl ? { ttl } : {}) },
      },
    ],
    messages: [{ role: 'user' as const, content: 'question' }],
  });

  it('creates then reads the prefix', async () => {
    const first = await client.messages.create(cached());
    expect(first.usage).toMatchObject({
      input_tokens: 5,
      cache_creation_input_tokens: 100,
      cache_read_input_tokens: 0,
    });
    expect(first.usage.cache_creation?.ephemeral_5m_input_tokens).toBe(100);
    const second = await client.messages.create(cached());
    expect(second.usage).toMatchObject({
      input_tokens: 5,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 100,
    });
    expect(fake.served[1]?.usage).toMatchObject({ cache_read: 100, cache_creation_5m: 0 });
    // Another key is another org: no hit.
    const other = await sdk('sk-ant-api03-test-bob').messages.create(cached());
    expect(other.usage.cache_read_input_tokens).toBe(0);
  });

  it('splits 1h creation and expires entries by the clock', async () => {
    let t = 0;
    const local = await startFakeUpstream({ now: () => t });
    try {
      const c = new Anthropic({ apiKey: KEY, baseURL: local.url, maxRetries: 0 });
      const a = await c.messages.create(cached('1h'));
      expect(a.usage.cache_creation).toEqual({
        ephemeral_5m_input_tokens: 0,
        ephemeral_1h_input_tokens: 100,
      });
      t += 59 * 60_000;
      expect((await c.messages.create(cached('1h'))).usage.cache_read_input_tokens).toBe(100);
      t += 61 * 60_000;
      expect((await c.messages.create(cached('1h'))).usage.cache_read_input_tokens).toBe(0);
    } finally {
      await local.close();
    }
  });
});

describe('models and admin', () => {
  it('paginates /v1/models', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list({ limit: 4 })) ids.push(m.id);
    expect(ids).toEqual(FAKE_MODELS.map((m) => m.id));
    expect(fake.served.map((r) => r.query.after_id ?? null)).toEqual([null, ids[3], ids[7]]);
    const page = await client.models.list({ before_id: ids[2] ?? '', limit: 1 });
    expect(page.data.map((m) => m.id)).toEqual([ids[1]]);
    await expect(client.models.list({ limit: 1001 })).rejects.toBeInstanceOf(Anthropic.BadRequestError);
    expect((await client.models.retrieve('claude-haiku-4-5')).id).toBe('claude-haiku-4-5-20251001');
    await expect(client.models.retrieve('claude-nope')).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });

  it('serves /v1/organizations/me to admin keys only', async () => {
    const ok = await fetch(`${fake.url}/v1/organizations/me`, { headers: { 'x-api-key': ADMIN } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ type: 'organization', name: 'Fake Org' });
    const inference = await fetch(`${fake.url}/v1/organizations/me`, { headers: { 'x-api-key': KEY } });
    expect(inference.status).toBe(403);
    await expect(sdk(ADMIN).models.list()).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    expect(fake.served[0]?.headers.authorization).toBe('x-api-key');
  });

  it('answers 401 for revoked and unknown keys; / is open', async () => {
    fake.revokeKey(KEY);
    const err = await client.models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((err as APIError).error).toMatchObject({
      error: { type: 'authentication_error', message: 'invalid x-api-key' },
    });
    await expect(sdk('sk-ant-api03-real').models.list()).rejects.toBeInstanceOf(
      Anthropic.AuthenticationError,
    );
    expect((await fetch(fake.url, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`${fake.url}/v1/nope`)).status).toBe(404);
  });
});

describe('faults', () => {
  const ask = (text = 'hi', c = client) =>
    c.messages.create({ model: MODEL, max_tokens: 50, messages: [{ role: 'user', content: text }] });
  const streamText = async (text: string) => {
    const s = client.messages.stream({
      model: MODEL,
      max_tokens: 50,
      messages: [{ role: 'user', content: text }],
    });
    let got = '';
    s.on('text', (t) => {
      got += t;
    });
    const error = await s.finalMessage().then(
      () => null,
      (e: unknown) => e,
    );
    return { got, error };
  };

  it('429 carries retry-after and ratelimit headers; 500 and 529 map to their types', async () => {
    fake.enqueueFault({ kind: 'status', status: 429, retryAfterS: 3 }, { apiKey: KEY, path: '/v1/messages' });
    const err = (await ask().catch((e: unknown) => e)) as APIError;
    expect(err).toBeInstanceOf(Anthropic.RateLimitError);
    expect(err.headers?.get('retry-after')).toBe('3');
    expect(err.headers?.get('anthropic-ratelimit-requests-remaining')).toBe('0');
    expect(err.error).toMatchObject({ error: { type: 'rate_limit_error' } });
    fake.enqueueFault({ kind: 'status', status: 500 });
    await expect(ask()).rejects.toBeInstanceOf(Anthropic.InternalServerError);
    const overloaded = (await ask('x [[fake fault=529]]').catch((e: unknown) => e)) as APIError;
    expect(overloaded.status).toBe(529);
    expect(overloaded.error).toMatchObject({ error: { type: 'overloaded_error' } });
    expect((await ask()).type).toBe('message'); // one-shot faults are used up
    expect(fake.served.map((r) => r.outcome)).toEqual(['error', 'error', 'error', 'complete']);
  });

  it('default fault applies until cleared', async () => {
    fake.setDefaultFault({ kind: 'status', status: 529 });
    await expect(ask()).rejects.toBeInstanceOf(APIError);
    await expect(ask()).rejects.toBeInstanceOf(APIError);
    fake.setDefaultFault(null);
    expect((await ask()).type).toBe('message');
  });

  it('reset surfaces as a connection error, hang as a timeout', async () => {
    fake.enqueueFault({ kind: 'reset' });
    await expect(ask()).rejects.toBeInstanceOf(Anthropic.APIConnectionError);
    await expect(ask('[[fake fault=hang]]', sdk(KEY, 150))).rejects.toBeInstanceOf(
      Anthropic.APIConnectionTimeoutError,
    );
    expect(fake.served.map((r) => [r.outcome, r.status])).toEqual([
      ['reset', 0],
      ['hang', 0],
    ]);
  });

  it('midstream error arrives after HTTP 200 as an SDK stream error', async () => {
    const { got, error } = await streamText('x [[fake fault=midstream-error after_tokens=3]]');
    expect(got).toBe('tok tok tok ');
    expect(error).toBeInstanceOf(APIError);
    expect(String(error)).toMatch(/Overloaded/);
    expect(fake.served[0]).toMatchObject({ status: 200, outcome: 'midstream-error', outputTokensSent: 3 });
    expect(fake.served[0]?.usage?.output_tokens).toBe(3);
  });

  it('reset mid-stream breaks the SDK stream and records what was sent', async () => {
    const { got, error } = await streamText('x [[fake fault=reset-midstream after_tokens=2]]');
    expect(got).toBe('tok tok ');
    expect(error).toBeInstanceOf(Error);
    expect(fake.served[0]).toMatchObject({ outcome: 'reset', outputTokensSent: 2 });
  });

  it('slow stream detects the client aborting', async () => {
    const s = client.messages.stream({
      model: MODEL,
      max_tokens: 50,
      messages: [{ role: 'user', content: '[[fake fault=slow-stream delay_ms=15]]' }],
    });
    s.on('text', () => s.abort());
    await s.done().catch(() => undefined);
    const [rec] = await fake.waitForServed(1);
    expect(rec?.outcome).toBe('client-aborted');
    expect(rec?.outputTokensSent).toBeGreaterThanOrEqual(1);
    expect(rec?.outputTokensSent).toBeLessThan(20);
    expect(rec?.usage?.output_tokens).toBe(rec?.outputTokensSent);
  });

  it('close() ends hanging sockets', async () => {
    const local = await startFakeUpstream();
    local.setDefaultFault({ kind: 'hang' });
    const pending = fetch(`${local.url}/v1/models`, { headers: { 'x-api-key': KEY } }).catch(
      (e: unknown) => e,
    );
    await local.waitForServed(1);
    await local.close();
    expect(await pending).toBeInstanceOf(Error);
  });
});
