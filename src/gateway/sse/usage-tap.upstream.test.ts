// The tap against real wire bytes: streams from the in-repo fake Anthropic upstream, read chunk by chunk
// as the gateway will relay them, compared with what the fake says it billed.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, type ServedUsage, startFakeUpstream } from '../../../test/fake-upstream/index.js';
import { deltaTokenEstimate } from './estimate.js';
import { createUsageTap, type StreamUsage, type TapResult } from './usage-tap.js';

const KEY = 'sk-ant-api03-test-usage-tap';
const MODEL = 'claude-sonnet-4-6';

let fake: FakeUpstream;
beforeAll(async () => {
  fake = await startFakeUpstream();
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());

/**
 * Streams one request through a tap, as the gateway will: chunk by chunk as they arrive. A second tap gets
 * every chunk cut into 7-byte pieces and must agree. `failed` when the body broke off (reset mid-stream).
 */
async function tapped(
  upstream: FakeUpstream,
  body: Record<string, unknown>,
): Promise<{ result: TapResult; failed: boolean }> {
  const res = await fetch(`${upstream.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, max_tokens: 4096, stream: true, ...body }),
  });
  expect(res.status).toBe(200);
  const tap = createUsageTap();
  const fine = createUsageTap();
  let failed = false;
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      tap.push(chunk);
      for (let k = 0; k < chunk.length; k += 7) fine.push(chunk.subarray(k, k + 7));
    }
  } catch {
    failed = true;
  }
  const result = tap.result();
  expect(fine.result()).toEqual(result);
  return { result, failed };
}

const ask = (content: string, extra: Record<string, unknown> = {}) => ({
  messages: [{ role: 'user', content }],
  ...extra,
});

/** The tap's figures in the fake's shape. */
function asServed(u: StreamUsage): ServedUsage {
  return {
    input_tokens: u.inputTokens,
    output_tokens: u.outputTokens,
    cache_creation_5m: u.cacheWrite5mTokens,
    cache_creation_1h: u.cacheWrite1hTokens,
    cache_read: u.cacheReadTokens,
    web_search_requests: u.webSearchRequests,
    web_fetch_requests: u.webFetchRequests,
  };
}

const cachedSystem = (ttl?: '1h') => ({
  system: [
    {
      type: 'text',
      text: 'You are terse. '.repeat(40),
      cache_control: { type: 'ephemeral', ...(ttl ? { ttl } : {}) },
    },
  ],
});

describe('usage tap on the fake upstream', () => {
  const complete: Array<[string, Record<string, unknown>]> = [
    ['default output', ask('Hello there')],
    ['long output', ask('Write a lot [[fake output_tokens=3000]]')],
    ['max_tokens clip', { ...ask('more [[fake output_tokens=50]]'), max_tokens: 7 }],
    ['cache write 5m', { ...ask('q [[fake output_tokens=12]]'), ...cachedSystem() }],
    ['cache write 1h', { ...ask('q [[fake output_tokens=12]]'), ...cachedSystem('1h') }],
    [
      'web search and fetch',
      ask('look it up [[fake output_tokens=30 web_searches=3 web_fetches=2]]', {
        tools: [
          { type: 'web_search_20250305', name: 'web_search' },
          { type: 'web_fetch_20250910', name: 'web_fetch', max_uses: 1 },
        ],
      }),
    ],
  ];

  it.each(complete)('equals the fake’s final usage: %s', async (_name, body) => {
    const { result } = await tapped(fake, body);
    const served = fake.served.at(-1);
    expect(served?.outcome).toBe('complete');
    expect(result).toMatchObject({ complete: true, estimated: false, errorType: null });
    expect(asServed(result.usage)).toEqual(served?.usage);
    expect(result.deltas).toBe(served?.outputTokensSent);
    expect(result.usage.model).toBe(MODEL);
    expect(result.usage.messageId).toMatch(/^msg_fake_/);
  });

  it('reads cache hits on the second identical request', async () => {
    const body = { ...ask('again [[fake output_tokens=5]]'), ...cachedSystem() };
    await tapped(fake, body);
    const { result } = await tapped(fake, body);
    expect(result.usage.cacheReadTokens).toBeGreaterThan(0);
    expect(asServed(result.usage)).toEqual(fake.served.at(-1)?.usage);
  });

  it('agrees with the fake for multi-token deltas', async () => {
    const local = await startFakeUpstream({ streamChunkTokens: 7 });
    try {
      const { result } = await tapped(local, ask('x [[fake output_tokens=100]]'));
      expect(asServed(result.usage)).toEqual(local.served.at(-1)?.usage);
      expect(result.deltas).toBe(Math.ceil(100 / 7));
    } finally {
      await local.close();
    }
  });

  it('records a mid-stream error as estimated, never below what was sent', async () => {
    const { result } = await tapped(
      fake,
      ask('x [[fake output_tokens=40]] [[fake fault=midstream-error after_tokens=5]]'),
    );
    const served = fake.served.at(-1);
    expect(served?.outcome).toBe('midstream-error');
    expect(result).toMatchObject({
      complete: false,
      estimated: true,
      errorType: 'overloaded_error',
      deltas: 5,
    });
    expect(result.usage.inputTokens).toBe(served?.usage?.input_tokens);
    expect(result.usage.outputTokens).toBeGreaterThanOrEqual(served?.usage?.output_tokens ?? Infinity);
    // Five deltas of "tok " (4 bytes each).
    expect(result.usage.outputTokens).toBe(5 * deltaTokenEstimate(4));
  });

  it('estimates a stream reset mid-way from the deltas relayed', async () => {
    const { result, failed } = await tapped(
      fake,
      ask('x [[fake output_tokens=40]] [[fake fault=reset-midstream after_tokens=9]]'),
    );
    const served = fake.served.at(-1);
    expect(failed).toBe(true);
    expect(result).toMatchObject({ complete: false, estimated: true, errorType: null });
    expect(result.usage.outputTokens).toBeGreaterThanOrEqual(served?.usage?.output_tokens ?? Infinity);
    expect(result.usage.inputTokens).toBe(served?.usage?.input_tokens);
  });
});
