// Issue 11, causes C, D (order) and H, through the real server with the official SDK: the upstream
// never reads a body differently from the one Tollgate checked (duplicate keys are refused), cheap
// refusals (rate limits, concurrency) come before any work on the body, the Bearer scheme is
// case-insensitive, max_tokens beyond any model is a 400, and the model list is filtered then paged.
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Harness, startHarness } from '../helpers/gateway.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

/** An SDK client whose outgoing body is rewritten on the wire (what a hand-written client may send). */
function rewritingClient(h: Harness, key: string, rewrite: (body: string) => string): Anthropic {
  return new Anthropic({
    apiKey: key,
    baseURL: h.url,
    maxRetries: 0,
    fetch: (input: string | URL | Request, init?: RequestInit) =>
      fetch(input, { ...init, body: rewrite(String(init?.body ?? '')) }),
  });
}

/** An SDK client whose Authorization header is replaced by `authorization(key)`. */
function authClient(h: Harness, key: string, authorization: (key: string) => string): Anthropic {
  return new Anthropic({
    authToken: key,
    baseURL: h.url,
    maxRetries: 0,
    fetch: (input: string | URL | Request, init?: RequestInit) => {
      const headers = new Headers(init?.headers);
      headers.set('authorization', authorization(key));
      return fetch(input, { ...init, headers });
    },
  });
}

async function refusal(p: Promise<unknown>): Promise<{ status: number; type: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof Anthropic.APIError) {
      const error = (e.error as { error?: { type?: string; message?: string } } | undefined)?.error;
      return { status: e.status ?? 0, type: error?.type ?? '', message: error?.message ?? '' };
    }
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('what the upstream sees is what was checked (duplicate keys)', () => {
  let h: Harness;
  let haikuOnly: string;
  beforeAll(async () => {
    h = await startHarness();
    await h.orgCredential();
    haikuOnly = await h.key({
      user: 'dup',
      policy: { models: ['claude-haiku-4-5'], tools: ['get_weather'] },
    });
  });
  afterAll(() => h.close());

  it('refuses the smuggling body (Opus, code execution and MCP before a second "model"), forwarding nothing', async () => {
    const before = h.fake.served.length;
    const smuggle = (body: string) =>
      body.replace(
        '{',
        '{"model":"claude-opus-4-1","tools":[{"type":"code_execution_20250825","name":"code_execution"}],"mcp_servers":[{"type":"url","url":"https://evil.example/mcp","name":"x"}],',
      );
    const client = rewritingClient(h, haikuOnly, smuggle);
    const r = await refusal(client.messages.create(PARAMS));
    expect(r).toMatchObject({ status: 400, type: 'invalid_request_error' });
    expect(r.message).toContain('"model" twice');
    expect(h.fake.served.length).toBe(before);
    // Positive controls: the same key's own body passes; the first half alone is refused as Opus.
    expect((await h.client(haikuOnly).messages.create(PARAMS)).type).toBe('message');
    expect(h.fake.served.length).toBe(before + 1);
    expect(h.fake.served.at(-1)?.model).toBe('claude-haiku-4-5');
    const opus = await refusal(h.client(haikuOnly).messages.create({ ...PARAMS, model: 'claude-opus-4-1' }));
    expect(opus.status).toBe(403);
  });

  it('refuses duplicates spelled with escapes and nested duplicates, naming their path', async () => {
    const escaped = rewritingClient(h, haikuOnly, (b) => b.replace('{', '{"mo\\u0064el":"claude-opus-4-1",'));
    expect(await refusal(escaped.messages.create(PARAMS))).toMatchObject({
      status: 400,
      message: expect.stringContaining('"model" twice'),
    });
    // A tool allowed by name, then renamed by a second "name" inside the same tool object.
    const tool = { name: 'get_weather', input_schema: { type: 'object' as const } };
    const nested = rewritingClient(h, haikuOnly, (b) =>
      b.replace('"name":"get_weather"', '"name":"get_weather","name":"web_fetch"'),
    );
    expect(await refusal(nested.messages.create({ ...PARAMS, tools: [tool] }))).toMatchObject({
      status: 400,
      message: expect.stringContaining('"tools[0].name" twice'),
    });
    // Positive control: the same tool, named once, passes.
    expect((await h.client(haikuOnly).messages.create({ ...PARAMS, tools: [tool] })).type).toBe('message');
  });
});

describe('large bodies are admitted in several event-loop turns, with the same result', () => {
  let h: Harness;
  let key: string;
  beforeAll(async () => {
    h = await startHarness();
    await h.orgCredential();
    key = await h.key({ user: 'large' });
  });
  afterAll(() => h.close());

  it('a 2 MB body that Tollgate patches (automatic cache breakpoint) reaches the upstream whole and patched', async () => {
    const system = 'You are a careful assistant. '.repeat(80_000); // ~2.2 MB, over LARGE_BODY_BYTES
    const params = { ...PARAMS, system };
    const counted = await h
      .client(key)
      .messages.countTokens({ model: params.model, system, messages: params.messages });
    const answer = await h.client(key).messages.create(params);
    const u = answer.usage;
    // The breakpoint Tollgate added made the upstream write the prefix to its cache; nothing was lost.
    expect(u.cache_creation_input_tokens ?? 0).toBeGreaterThan(0);
    expect(u.input_tokens + (u.cache_creation_input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0)).toBe(
      counted.input_tokens,
    );
  });

  it('a 2 MB body with a duplicate key is refused like a small one; a 2 MB body too deep likewise', async () => {
    const big = 'x'.repeat(2 * 1024 * 1024);
    const dup = rewritingClient(h, key, (b) => b.replace('{', '{"model":"claude-opus-4-1",'));
    expect(
      await refusal(dup.messages.create({ ...PARAMS, messages: [{ role: 'user', content: big }] })),
    ).toMatchObject({ status: 400, message: expect.stringContaining('"model" twice') });
    const deep = rewritingClient(h, key, (b) =>
      b.replace('"content":"x', `"extra":${'['.repeat(70)}1${']'.repeat(70)},"content":"x`),
    );
    expect(
      await refusal(deep.messages.create({ ...PARAMS, messages: [{ role: 'user', content: big }] })),
    ).toMatchObject({ status: 400, message: expect.stringContaining('nested deeper') });
  });
});

describe('cheap refusals first', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await h.orgCredential();
  });
  afterAll(() => h.close());

  it('a 1-RPM key sending 30 MB bodies is refused before its body is parsed', async () => {
    const key = await h.key({ user: 'flood', policy: { rpm: 1 } });
    const big = { ...PARAMS, messages: [{ role: 'user' as const, content: 'x'.repeat(30 * 1024 * 1024) }] };
    const parse = vi.spyOn(JSON, 'parse');
    const bigParses = () =>
      parse.mock.calls.filter(([text]) => typeof text === 'string' && text.length > 30e6).length;
    try {
      // Positive control: the first request of the minute is parsed (whatever its answer).
      await h
        .client(key, { timeout: 60_000 })
        .messages.create(big)
        .catch(() => undefined);
      const first = bigParses();
      expect(first).toBeGreaterThanOrEqual(1);
      for (let i = 0; i < 3; i++) {
        const r = await refusal(h.client(key, { timeout: 60_000 }).messages.create(big));
        expect(r).toMatchObject({ status: 429, type: 'rate_limit_error' });
      }
      expect(bigParses()).toBe(first);
    } finally {
      parse.mockRestore();
    }
  });

  it('a request refused after taking its request slot still counts; its concurrency slot is released', async () => {
    const key = await h.key({
      user: 'counted',
      policy: { rpm: 3, concurrency: 1, models: ['claude-haiku-4-5'] },
    });
    const client = h.client(key);
    // Refusals of several kinds after the slot was taken: duplicate key, bad shape, model not allowed.
    const dup = rewritingClient(h, key, (b) => b.replace('{', '{"max_tokens":5,'));
    expect((await refusal(dup.messages.create(PARAMS))).status).toBe(400);
    expect((await refusal(client.messages.create({ ...PARAMS, model: 'claude-opus-4-1' }))).status).toBe(403);
    // Each released its concurrency slot (concurrency 1: this one would be a 429 otherwise) …
    expect((await client.messages.create(PARAMS)).type).toBe('message');
    // … and each counted as a request: the fourth in the minute is refused.
    expect(await refusal(client.messages.create(PARAMS))).toMatchObject({ status: 429 });
  });

  it('a key refused for its token limit releases its concurrency slot (positive control of the order)', async () => {
    const key = await h.key({ user: 'tpm', policy: { outputTpm: 30, concurrency: 1 } });
    const client = h.client(key);
    expect((await client.messages.create({ ...PARAMS, max_tokens: 20 })).type).toBe('message');
    expect(await refusal(client.messages.create({ ...PARAMS, max_tokens: 20 }))).toMatchObject({
      status: 429,
      message: expect.stringContaining('output tokens per minute'),
    });
    // The refused request's concurrency slot was released: a small request within the limit passes.
    expect((await client.messages.create({ ...PARAMS, max_tokens: 1 })).type).toBe('message');
  });
});

describe('small defects', () => {
  let h: Harness;
  let key: string;
  beforeAll(async () => {
    h = await startHarness();
    await h.orgCredential();
    key = await h.key({ user: 'small' });
  });
  afterAll(() => h.close());

  it('max_tokens beyond a safe price answers 400, not 500; a sane one passes', async () => {
    for (const max of [9007199254740991, 1_000_001, 2 ** 40]) {
      expect(await refusal(h.client(key).messages.create({ ...PARAMS, max_tokens: max }))).toMatchObject({
        status: 400,
        type: 'invalid_request_error',
        message: expect.stringContaining('max_tokens'),
      });
    }
    expect((await h.client(key).messages.create(PARAMS)).type).toBe('message');
  });

  it('accepts the Bearer scheme in any case and with extra spaces; refuses other schemes', async () => {
    for (const auth of [
      (k: string) => `bearer ${k}`,
      (k: string) => `BEARER   ${k}`,
      (k: string) => `BeArEr\t${k} `,
    ]) {
      expect((await authClient(h, key, auth).messages.create(PARAMS)).type).toBe('message');
      expect((await authClient(h, key, auth).messages.countTokens(PARAMS)).input_tokens).toBeGreaterThan(0);
    }
    expect((await authClient(h, key, (k) => `Bearer ${k}`).messages.create(PARAMS)).type).toBe('message');
    for (const auth of [
      (k: string) => `Basic ${k}`,
      (k: string) => `Bearer${k}`,
      (k: string) => `bearer x${k}`,
    ]) {
      expect((await refusal(authClient(h, key, auth).messages.create(PARAMS))).status).toBe(401);
    }
  });

  it('pages over only the models a key may use; a model it may not use is unknown', async () => {
    const two = await h.key({ user: 'two', policy: { models: ['claude-haiku-4-5', 'claude-sonnet-4-5'] } });
    const client = h.client(two);
    const first = await client.models.list({ limit: 1 });
    expect(first.data.map((m) => m.id)).toEqual(['claude-haiku-4-5-20251001']);
    expect(first.has_more).toBe(true);
    expect(first.first_id).toBe('claude-haiku-4-5-20251001');
    expect(first.last_id).toBe('claude-haiku-4-5-20251001');
    const all: string[] = [];
    for await (const m of client.models.list({ limit: 1 })) all.push(m.id);
    expect(all).toEqual(['claude-haiku-4-5-20251001', 'claude-sonnet-4-5-20250929']);
    const page2 = await client.models.list({ limit: 2 });
    expect(page2.data.map((m) => m.id)).toEqual(all);
    expect(page2.has_more).toBe(false);
    const back = await client.models.list({ limit: 5, before_id: 'claude-sonnet-4-5-20250929' });
    expect(back.data.map((m) => m.id)).toEqual(['claude-haiku-4-5-20251001']);
    expect(back.has_more).toBe(false);
    expect((await client.models.retrieve('claude-sonnet-4-5-20250929')).id).toBe(
      'claude-sonnet-4-5-20250929',
    );
    const hidden = await refusal(client.models.retrieve('claude-opus-4-1-20250805'));
    const unknown = await refusal(client.models.retrieve('claude-nonexistent-9'));
    expect(hidden).toMatchObject({ status: 404, type: 'not_found_error' });
    expect(unknown.status).toBe(404);
    // A key allowed every model sees the whole priced list, paged.
    const everything = await h.client(key).models.list({ limit: 3 });
    expect(everything.data).toHaveLength(3);
    expect(everything.has_more).toBe(true);
  });
});
