// Every bad request in the contract's table, answered with the right status and Anthropic error shape.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/gateway.js';

describe('gateway error table', () => {
  let h: Harness;
  let key: string;
  let capped: string;
  let prodOnly: string;
  let revoked: string;
  let expired: string;
  let removedOwner: string;

  beforeAll(async () => {
    h = await startHarness({ env: { TOLLGATE_SERVER_BODY_LIMIT_BYTES: String(256 * 1024) } });
    await h.services.credentials.add(h.admin, {
      name: 'dev-key',
      provider: 'anthropic',
      environment: 'dev',
      secret: 'sk-ant-api03-test-dev-0000000000000000000000000000000000000000',
      validate: false,
    });
    key = await h.key();
    capped = await h.key({
      user: 'bob',
      policy: {
        models: ['claude-haiku-4-5'],
        tools: ['get_weather'],
        maxTokens: 1000,
        maxCostPerRequestMicro: 2000,
      },
    });
    prodOnly = await h.key({ user: 'carol', policy: { environment: 'prod' } });
    revoked = await h.key({ user: 'dave' });
    const revokedId = (await h.services.keys.list({ user: 'dave' }))[0]?.id ?? '';
    await h.services.keys.revoke(h.admin, revokedId);
    const exp = await h.services.keys.issue(h.admin, { user: 'alice', policy: {}, expiresInMs: 1 });
    expired = exp.key;
    removedOwner = await h.key({ user: 'erin' });
    await h.services.users.remove(h.admin, 'erin');
    await h.refresh();
    await new Promise((r) => setTimeout(r, 5));
  });
  afterAll(() => h.close());

  async function post(body: unknown, headers: Record<string, string> = { 'x-api-key': key }, raw?: string) {
    const response = await fetch(`${h.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers },
      body: raw ?? JSON.stringify(body),
    });
    const json = (await response.json()) as {
      type: string;
      error: { type: string; message: string; details?: unknown };
      request_id: string;
    };
    return { status: response.status, json, headers: response.headers };
  }

  const ok = { model: 'claude-haiku-4-5', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] };

  it('positive control: a good request passes', async () => {
    const r = await fetch(`${h.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': capped },
      body: JSON.stringify(ok),
    });
    expect(r.status).toBe(200);
  });

  it('401 with one body for missing, malformed, unknown, revoked, expired and owner-removed keys', async () => {
    const bodies = new Set<string>();
    const cases: Record<string, string>[] = [
      {},
      { 'x-api-key': '' },
      { 'x-api-key': '   ' },
      { 'x-api-key': 'tg_short' },
      { 'x-api-key': `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}` },
      { 'x-api-key': "' OR 1=1 --" },
      { 'x-api-key': 'x'.repeat(60_000) },
      { authorization: 'Bearer nope' },
      { 'x-api-key': key, authorization: `Bearer ${capped}` },
      { 'x-api-key': revoked },
      { 'x-api-key': expired },
      { 'x-api-key': removedOwner },
    ];
    for (const headers of cases) {
      const r = await post(ok, headers);
      expect(r.status, JSON.stringify(Object.keys(headers))).toBe(401);
      expect(r.json.type).toBe('error');
      expect(r.json.error.type).toBe('authentication_error');
      bodies.add(r.json.error.message);
    }
    expect(bodies.size).toBe(1);
  });

  it('403 permission_error for a model, a tool or an environment the key may not use', async () => {
    const model = await post({ ...ok, model: 'claude-sonnet-4-6' }, { 'x-api-key': capped });
    expect([model.status, model.json.error.type]).toEqual([403, 'permission_error']);
    expect(model.json.error.message).toContain('claude-sonnet-4-6');
    const tool = await post(
      { ...ok, tools: [{ name: 'delete_everything', input_schema: { type: 'object' } }] },
      { 'x-api-key': capped },
    );
    expect([tool.status, tool.json.error.type]).toEqual([403, 'permission_error']);
    expect(tool.json.error.message).toContain('delete_everything');
    const env = await post(ok, { 'x-api-key': prodOnly });
    expect([env.status, env.json.error.type]).toEqual([403, 'permission_error']);
    expect(env.json.error.message).toContain('prod');
  });

  it('400 invalid_request_error for malformed JSON, schema violations, caps and unknown models', async () => {
    const cases: Array<[unknown, string | undefined, RegExp, string?]> = [
      [null, '{"model": ', /not valid JSON/],
      [null, '[1,2]', /JSON object/],
      [null, `${'['.repeat(5000)}${']'.repeat(5000)}`, /nested deeper/],
      [{ ...ok, max_tokens: 0 }, undefined, /max_tokens/],
      [{ ...ok, max_tokens: 'many' }, undefined, /max_tokens/],
      [{ max_tokens: 5, messages: [] }, undefined, /model/],
      [{ ...ok, messages: 'hi' }, undefined, /messages/],
      [{ ...ok, max_tokens: 5000 }, undefined, /exceeds this key's cap of 1000/, capped],
      [
        { ...ok, max_tokens: 1000, messages: [{ role: 'user', content: 'x'.repeat(50_000) }] },
        undefined,
        /per-request cap/,
        capped,
      ],
      [{ ...ok, model: 'claude-imaginary-9' }, undefined, /no price/],
    ];
    for (const [body, raw, pattern, k] of cases) {
      const r = await post(body, { 'x-api-key': k ?? key }, raw);
      expect(r.status, String(pattern)).toBe(400);
      expect(r.json.error.type).toBe('invalid_request_error');
      expect(r.json.error.message).toMatch(pattern);
    }
  });

  it('413 request_too_large over the body limit', async () => {
    const r = await post({ ...ok, messages: [{ role: 'user', content: 'x'.repeat(300 * 1024) }] });
    expect(r.status).toBe(413);
    expect(r.json.error.type).toBe('request_too_large');
  });

  it('404 not_found_error for unknown /v1 paths, including batch and file routes for now', async () => {
    for (const path of ['/v1/messages/batches', '/v1/files', '/v1/complete', '/v1/nope']) {
      const r = await fetch(`${h.url}${path}`, { method: 'POST', headers: { 'x-api-key': key } });
      expect(r.status).toBe(404);
      expect(((await r.json()) as { error: { type: string } }).error.type).toBe('not_found_error');
    }
  });

  it('never lets the client choose the upstream', async () => {
    const before = h.fake.served.length;
    const r = await fetch(`${h.url}/v1/messages`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': key,
        host: 'evil.example',
        'x-forwarded-host': 'evil.example',
      },
      body: JSON.stringify({ ...ok, api_base: 'http://evil.example' }),
    });
    expect(r.status).toBe(200);
    expect(h.fake.served.length).toBe(before + 1);
  });
});
