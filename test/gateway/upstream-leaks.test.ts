// Nothing an upstream error echoes leaks: every 24+ character run of a credential or of the caller's
// key, raw or base64/base64url/hex/URL-encoded, is scrubbed from the body and the headers that reach
// the client and the usage record; the org's own `anthropic-ratelimit-*` headers never pass.
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WINDOW } from '../../src/gateway/scrub.js';
import { keyEcho } from '../fake-upstream/beta-tricks.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

type ApiError = InstanceType<typeof Anthropic.APIError>;

/** Every WINDOW-character run of the secret in each encoding an echo may use. */
function windows(secret: string): Set<string> {
  const bytes = Buffer.from(secret);
  const forms = [
    secret,
    bytes.toString('hex'),
    bytes.toString('hex').toUpperCase(),
    encodeURIComponent(secret),
  ];
  for (let k = 0; k < 3; k++) {
    forms.push(bytes.subarray(k).toString('base64'), bytes.subarray(k).toString('base64url'));
  }
  const out = new Set<string>();
  for (const f of forms) for (let i = 0; i + WINDOW <= f.length; i++) out.add(f.slice(i, i + WINDOW));
  return out;
}

/** The runs of `text` that are runs of a secret (an empty list when nothing leaked). */
function leaks(text: string, secrets: readonly string[]): string[] {
  const all = new Set<string>();
  for (const s of secrets) for (const w of windows(s)) all.add(w);
  const found: string[] = [];
  for (let i = 0; i + WINDOW <= text.length; i++) {
    const w = text.slice(i, i + WINDOW);
    if (all.has(w)) found.push(w);
  }
  return found;
}

describe('upstream errors reach the client scrubbed', () => {
  let h: Harness;
  let secret: string;
  let spare: string;
  let key: string;

  beforeAll(async () => {
    h = await startHarness();
    secret = await h.orgCredential('org-key');
    spare = await h.orgCredential('org-spare');
    key = await h.key();
  });
  beforeEach(() => h.fake.reset());
  afterAll(() => h.close());

  it("an echo of the credential (fragments, base64, hex, URL-encoded) and of the caller's key is scrubbed from body, headers and record", async () => {
    // The caller's own key comes back too: the upstream echoes the message, which carries it encoded.
    const content = `mine: ${Buffer.from(key).toString('base64')} and ${key.slice(3, 40)}`;
    const error = (await h
      .client(key)
      .messages.create(
        { ...PARAMS, messages: [{ role: 'user', content }] },
        { headers: { 'anthropic-beta': 'fake-echo-key' } },
      )
      .catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    // The fake did echo them (what would have leaked).
    expect(keyEcho(secret).length).toBeGreaterThan(500);
    expect(h.fake.served.at(-1)).toMatchObject({ apiKey: secret, status: 400 });

    const body = JSON.stringify(error.error);
    expect(body).toContain('[redacted]');
    expect(body).toContain('unsupported value');
    expect(leaks(body, [secret, spare, key])).toEqual([]);
    const headers = JSON.stringify(Object.fromEntries(error.headers?.entries() ?? []));
    expect(error.headers?.get('request-id')).toBe('req_[redacted]');
    expect(leaks(headers, [secret, spare, key])).toEqual([]);

    const record = await h.installation.db.kysely
      .selectFrom('usage_records')
      .selectAll()
      .orderBy('at', 'desc')
      .executeTakeFirst();
    expect(record?.status).toBe(400);
    expect(leaks(JSON.stringify(record), [secret, spare, key])).toEqual([]);
    expect(leaks(h.logs(), [secret, spare, key])).toEqual([]);
  });

  it('an innocent upstream error passes byte for byte (positive control)', async () => {
    const upstream = {
      type: 'error',
      error: { type: 'invalid_request_error', message: 'messages.0.content: text blocks must be non-empty' },
      request_id: 'req_011CSHoEeqs5C35K2UUqLbar',
    };
    h.fake.enqueueFault({
      kind: 'status',
      status: 400,
      body: upstream,
      headers: { 'request-id': 'req_011CSHoEeqs5C35K2UUqLbar' },
    });
    const response = await fetch(`${h.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify(PARAMS),
    });
    expect(response.status).toBe(400);
    expect(await response.text()).toBe(JSON.stringify(upstream));
    expect(response.headers.get('request-id')).toBe('req_011CSHoEeqs5C35K2UUqLbar');
    // And through the SDK: the same error.
    h.fake.enqueueFault({ kind: 'status', status: 400, body: upstream });
    const error = (await h
      .client(key)
      .messages.create(PARAMS)
      .catch((e: unknown) => e)) as ApiError;
    expect(error.error).toEqual(upstream);
  });

  it("an upstream 429 passes retry-after but not the org's anthropic-ratelimit headers", async () => {
    h.fake.setDefaultFault({
      kind: 'status',
      status: 429,
      retryAfterS: 7,
      headers: { 'anthropic-ratelimit-tokens-limit': '2000000', 'anthropic-ratelimit-tokens-remaining': '0' },
    });
    const error = (await h
      .client(key)
      .messages.create(PARAMS)
      .catch((e: unknown) => e)) as ApiError;
    h.fake.setDefaultFault(null);
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    // The fake sent its ratelimit headers (requests-* on every 429, tokens-* here).
    expect(h.fake.served.at(-1)?.status).toBe(429);
    expect(error.headers?.get('retry-after')).toBe('7');
    const names = [...(error.headers?.keys() ?? [])];
    expect(names.filter((n) => n.startsWith('anthropic-ratelimit-'))).toEqual([]);

    // The echo trick sends them on a 400 as well: they do not pass there either.
    const echoed = (await h
      .client(key)
      .messages.create(PARAMS, { headers: { 'anthropic-beta': 'fake-echo-key' } })
      .catch((e: unknown) => e)) as ApiError;
    expect(echoed.status).toBe(400);
    expect([...(echoed.headers?.keys() ?? [])].filter((n) => n.startsWith('anthropic-ratelimit-'))).toEqual(
      [],
    );
  });

  it('a mid-stream error event echoing the credential is scrubbed before the client reads it', async () => {
    /** The raw SSE text the client receives for a stream the fake cuts with an error event. */
    const streamText = async (betas: string | null) => {
      const res = await fetch(`${h.url}/v1/messages`, {
        method: 'POST',
        headers: {
          'x-api-key': key,
          'content-type': 'application/json',
          'anthropic-version': '2023-06-01',
          ...(betas ? { 'anthropic-beta': betas } : {}),
        },
        body: JSON.stringify({
          ...PARAMS,
          stream: true,
          messages: [{ role: 'user', content: 'x [[fake fault=midstream-error after_tokens=2]]' }],
        }),
      });
      expect(res.status).toBe(200);
      return res.text();
    };
    const echoed = await streamText('fake-echo-key-midstream');
    expect(h.fake.served.at(-1)).toMatchObject({ apiKey: secret, outcome: 'midstream-error' });
    expect(echoed).toContain('event: error');
    expect(echoed).toContain('Overloaded: ');
    expect(echoed).toContain('[redacted]');
    expect(leaks(echoed, [secret, spare, key])).toEqual([]);
    // Positive control: an error event with nothing to scrub arrives byte for byte, deltas before it too.
    const plain = await streamText(null);
    expect(plain).toContain(
      'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
    );
    expect(plain).toContain('content_block_delta');
  });
});
