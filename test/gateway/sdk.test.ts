// The official @anthropic-ai/sdk against Tollgate in front of the fake upstream: create, stream,
// countTokens, models.list, and the SDK's error classes for the gateway's refusals.
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/gateway.js';

describe('gateway with the official SDK', () => {
  let h: Harness;
  let key: string;
  let orgSecret: string;

  beforeAll(async () => {
    h = await startHarness();
    orgSecret = await h.orgCredential();
    key = await h.key();
  });
  afterAll(() => h.close());

  it('creates a message and records its usage at the exact price', async () => {
    const client = h.client(key);
    const message = await client.messages.create({
      model: 'claude-sonnet-4-6',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Hello [[fake output_tokens=12]]' }],
    });
    expect(message.usage.output_tokens).toBe(12);
    const served = h.fake.served.at(-1);
    expect(served?.apiKey).toBe(orgSecret);
    expect(served?.rawHeaders.authorization).toBeUndefined();
    const rows = await h.installation.db.kysely.selectFrom('usage_records').selectAll().execute();
    const row = rows.at(-1);
    expect(row).toMatchObject({
      model: 'claude-sonnet-4-6',
      output_tokens: 12,
      input_tokens: served?.usage?.input_tokens,
      status: 200,
      stream: 0,
    });
    // Sonnet 4.6: $3 / MTok in, $15 / MTok out.
    // Last-use times are written off the hot path; after a flush the key and credential show them.
    await h.gateway.deps.ledger.flushLastUse();
    const shown = (await h.services.keys.list()).find((k) => k.id === row?.key_id);
    expect(shown?.lastUsedAt).toBeGreaterThan(0);
    expect((await h.services.credentials.show('org-key')).lastUsedAt).toBeGreaterThan(0);
    expect(row?.cost_micro).toBe(Math.round((served?.usage?.input_tokens ?? 0) * 3 + 12 * 15));
  });

  it('streams events as they arrive and records the final usage', async () => {
    const client = h.client(key);
    const stream = client.messages.stream({
      model: 'claude-haiku-4-5',
      max_tokens: 300,
      messages: [{ role: 'user', content: 'Stream please [[fake output_tokens=200]]' }],
    });
    let text = '';
    stream.on('text', (t) => {
      text += t;
    });
    const final = await stream.finalMessage();
    expect(final.usage.output_tokens).toBe(200);
    expect(text.split('tok').length - 1).toBe(200);
    const row = (
      await h.installation.db.kysely.selectFrom('usage_records').selectAll().orderBy('at').execute()
    ).at(-1);
    expect(row).toMatchObject({
      model: 'claude-haiku-4-5',
      output_tokens: 200,
      stream: 1,
      partial: 0,
      estimated: 0,
    });
  });

  it('counts tokens and lists models through the gateway', async () => {
    const client = h.client(key);
    const counted = await client.messages.countTokens({
      model: 'claude-sonnet-4-6',
      messages: [{ role: 'user', content: 'count me' }],
    });
    expect(counted.input_tokens).toBeGreaterThan(0);
    const page = await client.models.list({ limit: 5 });
    expect(page.data.length).toBeGreaterThan(0);
    const model = await client.models.retrieve('claude-sonnet-4-6');
    expect(model.id).toBe('claude-sonnet-4-6');
  });

  it('passes query strings and anthropic-beta / anthropic-version through', async () => {
    const response = await fetch(`${h.url}/v1/messages?beta=true`, {
      method: 'POST',
      headers: {
        'x-api-key': key,
        authorization: `Bearer ${key}`,
        'anthropic-version': '2023-06-01',
        'anthropic-beta': 'prompt-caching-2024-07-31,interleaved-thinking-2025-05-14',
        'content-type': 'application/json',
        connection: 'keep-alive',
      },
      body: JSON.stringify({
        model: 'claude-sonnet-4-6',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    expect(response.status).toBe(200);
    const served = h.fake.served.at(-1);
    expect(served?.query).toEqual({ beta: 'true' });
    expect(served?.headers.anthropicVersion).toBe('2023-06-01');
    expect(served?.headers.anthropicBeta).toEqual([
      'prompt-caching-2024-07-31',
      'interleaved-thinking-2025-05-14',
    ]);
    expect(served?.rawHeaders.authorization).toBeUndefined();
    expect(served?.rawHeaders['x-api-key']).toBe(served?.apiKey);
    expect(response.headers.get('x-tollgate-request-id')).toMatch(/^req_/);
  });

  it('maps refusals to the SDK error classes', async () => {
    await expect(
      h.client('tg_invalid').messages.create({
        model: 'claude-sonnet-4-6',
        max_tokens: 5,
        messages: [{ role: 'user', content: 'x' }],
      }),
    ).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    const limited = await h.key({ user: 'bob', policy: { models: ['claude-haiku-4-5'] } });
    const denied = h.client(limited).messages.create({
      model: 'claude-sonnet-4-6',
      max_tokens: 5,
      messages: [{ role: 'user', content: 'x' }],
    });
    await expect(denied).rejects.toBeInstanceOf(Anthropic.PermissionDeniedError);
    await expect(denied).rejects.toThrow(/claude-sonnet-4-6/);
  });
});
