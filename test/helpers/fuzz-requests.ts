// Fuzzed Messages requests for the gateway: a valid body, then mutations of its fields (any JSON value
// in any place, odd numbers, unknown blocks and tools, deep nesting), of its bytes (truncation,
// duplicated keys, stray bytes) and of its headers (auth spellings, beta and version values). None
// carries a `[[fake …]]` directive, so the fake upstream never fails on purpose: a 5xx is Tollgate's.
import fc from 'fast-check';

export interface FuzzRequest {
  readonly body: string | Uint8Array;
  readonly headers: Record<string, string>;
  readonly path: string;
}

const MODELS = [
  'claude-haiku-4-5',
  'claude-sonnet-4-5',
  'claude-opus-4-1',
  'claude-haiku-4-5-20251001',
  'nope',
];

const oddNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(
    0,
    -1,
    1,
    1.5,
    2 ** 31,
    2 ** 53 - 1,
    2 ** 53,
    2 ** 53 + 2,
    1e308,
    -1e308,
    Number.MIN_VALUE,
    4096,
    128_000,
    1_000_000,
  ),
);

/** Any JSON value, with the odd numbers above mixed in. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { depthSize: 'small' },
  fc.jsonValue({ maxDepth: 3 }),
  oddNumber,
  fc.string({ unit: 'grapheme', maxLength: 40 }),
);

const text = fc.string({ maxLength: 60 }).filter((s) => !s.includes('[[fake'));

const source = fc.oneof(
  fc.record({
    type: fc.constant('base64'),
    media_type: fc.constantFrom('image/png', 'application/pdf', 'x'),
    data: fc.oneof(fc.base64String({ maxLength: 40 }), anyValue),
  }),
  fc.record({ type: fc.constant('url'), url: fc.oneof(fc.webUrl(), anyValue) }),
  fc.record({ type: fc.constant('file'), file_id: fc.oneof(fc.string({ maxLength: 20 }), anyValue) }),
  fc.record({
    type: fc.constant('text'),
    media_type: fc.constant('text/plain'),
    data: fc.oneof(text, anyValue),
  }),
  fc.record({
    type: fc.constant('content'),
    content: fc.oneof(fc.array(anyValue, { maxLength: 3 }), anyValue),
  }),
  anyValue,
);

const cacheControl = fc.oneof(
  fc.record({ type: fc.constant('ephemeral') }),
  fc.record({ type: fc.constant('ephemeral'), ttl: fc.oneof(fc.constantFrom('5m', '1h'), anyValue) }),
  anyValue,
);

const block: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({ type: fc.constant('text'), text }, { requiredKeys: ['type'] }),
  fc.record({ type: fc.constant('text'), text, cache_control: cacheControl }, { requiredKeys: ['type'] }),
  fc.record(
    { type: fc.constantFrom('image', 'document'), source, cache_control: cacheControl },
    { requiredKeys: ['type'] },
  ),
  fc.record({
    type: fc.constant('tool_use'),
    id: fc.string({ maxLength: 8 }),
    name: fc.string({ maxLength: 8 }),
    input: anyValue,
  }),
  fc.record(
    {
      type: fc.constant('tool_result'),
      tool_use_id: fc.string({ maxLength: 8 }),
      content: fc.oneof(
        text,
        fc.array(fc.oneof(fc.record({ type: fc.constant('text'), text }), anyValue), { maxLength: 3 }),
        anyValue,
      ),
      cache_control: cacheControl,
    },
    { requiredKeys: ['type'] },
  ),
  fc.record(
    { type: fc.constantFrom('thinking', 'redacted_thinking'), thinking: text, signature: text, data: text },
    { requiredKeys: ['type'] },
  ),
  fc.record(
    {
      type: fc.constantFrom(
        'search_result',
        'server_tool_use',
        'web_search_tool_result',
        'container_upload',
        'mystery',
      ),
      content: anyValue,
      source: anyValue,
      input: anyValue,
      cache_control: cacheControl,
    },
    { requiredKeys: ['type'] },
  ),
  anyValue,
);

const content = fc.oneof(
  { arbitrary: text, weight: 3 },
  { arbitrary: fc.array(block, { maxLength: 4 }), weight: 3 },
  anyValue,
);
const message = fc.oneof(
  { arbitrary: fc.record({ role: fc.constantFrom('user', 'assistant'), content }), weight: 6 },
  fc.record({ role: anyValue, content }, { requiredKeys: [] }),
  anyValue,
);

const tool = fc.oneof(
  fc.record(
    {
      name: fc.string({ maxLength: 10 }),
      input_schema: anyValue,
      description: text,
      cache_control: cacheControl,
    },
    { requiredKeys: ['name'] },
  ),
  fc.record(
    {
      type: fc.constantFrom(
        'web_search_20250305',
        'web_fetch_20250910',
        'code_execution_20250825',
        'bash_20250124',
        'text_editor_20250728',
        'memory_20250818',
        'computer_20250124',
        'mystery_20990101',
      ),
      name: fc.constantFrom(
        'web_search',
        'web_fetch',
        'code_execution',
        'bash',
        'str_replace_based_edit_tool',
        'memory',
        'computer',
        'x',
      ),
      max_uses: oddNumber,
      max_content_tokens: oddNumber,
    },
    { requiredKeys: ['type', 'name'] },
  ),
  anyValue,
);

/** A body that is valid, then has some of its fields replaced or removed and some added. */
const bodyObject = fc
  .record(
    {
      model: fc.oneof({ arbitrary: fc.constantFrom(...MODELS), weight: 8 }, anyValue),
      max_tokens: fc.oneof(
        { arbitrary: fc.integer({ min: 1, max: 200 }), weight: 6 },
        { arbitrary: fc.constantFrom(2 ** 53 - 1, 2 ** 40, 1e9, 128_000), weight: 2 },
        oddNumber,
        anyValue,
      ),
      messages: fc.oneof(
        { arbitrary: fc.array(message, { minLength: 1, maxLength: 3 }), weight: 8 },
        anyValue,
      ),
      system: fc.oneof(text, fc.array(block, { maxLength: 2 }), anyValue),
      tools: fc.oneof(fc.array(tool, { maxLength: 3 }), anyValue),
      tool_choice: anyValue,
      thinking: fc.oneof(
        fc.record({ type: fc.constantFrom('enabled', 'disabled'), budget_tokens: oddNumber }),
        anyValue,
      ),
      stream: fc.oneof(fc.boolean(), anyValue),
      metadata: anyValue,
      temperature: oddNumber,
      stop_sequences: anyValue,
      mcp_servers: anyValue,
      container: anyValue,
      extra: fc.dictionary(fc.string({ maxLength: 8 }), anyValue, { maxKeys: 3 }),
    },
    { requiredKeys: ['model', 'max_tokens', 'messages'] },
  )
  .map((r) => {
    const { extra, ...rest } = r;
    return { ...extra, ...rest } as Record<string, unknown>;
  });

/** Byte-level mutations of a serialised body. */
const bytesOf = (json: string): fc.Arbitrary<string | Uint8Array> =>
  fc.oneof(
    { arbitrary: fc.constant(json), weight: 6 },
    { arbitrary: fc.nat({ max: Math.max(0, json.length) }).map((n) => json.slice(0, n)), weight: 1 },
    {
      arbitrary: fc
        .constantFrom('{"model":"claude-opus-4-1",', '{"max_tokens":1,', '{"mo\\u0064el":"x",')
        .map((p) => json.replace('{', p)),
      weight: 1,
    },
    {
      arbitrary: fc
        .tuple(fc.nat({ max: json.length }), fc.uint8Array({ minLength: 1, maxLength: 4 }))
        .map(([at, bytes]) => {
          const head = Buffer.from(json.slice(0, at));
          return Buffer.concat([head, Buffer.from(bytes), Buffer.from(json.slice(at))]);
        }),
      weight: 1,
    },
    { arbitrary: fc.nat({ max: 200 }).map((d) => `${'['.repeat(d)}${json}${']'.repeat(d)}`), weight: 1 },
  );

const headerValue = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom(
    '',
    ' ',
    'context-1m-2025-08-07',
    'interleaved-thinking-2025-05-14,token-efficient-tools-2025-02-19',
    'files-api-2025-04-14',
    'x'.repeat(300),
  ),
);

const headersFor = (key: string): fc.Arbitrary<Record<string, string>> =>
  fc
    .record(
      {
        auth: fc.constantFrom(
          'x-api-key',
          'bearer',
          'Bearer',
          'BEARER  ',
          'both',
          'both-differ',
          'none',
          'garbled',
        ),
        beta: fc.option(headerValue, { nil: undefined }),
        version: fc.option(fc.oneof(fc.constant('2023-06-01'), headerValue), { nil: undefined }),
        contentType: fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-8'),
        tollgateUser: fc.oneof(
          { arbitrary: fc.constant(undefined), weight: 19 },
          fc.string({ maxLength: 10 }),
        ),
      },
      { requiredKeys: ['auth', 'contentType'] },
    )
    .map((h) => {
      const out: Record<string, string> = { 'content-type': h.contentType };
      if (h.auth === 'x-api-key' || h.auth === 'both' || h.auth === 'both-differ') out['x-api-key'] = key;
      if (h.auth === 'bearer' || h.auth === 'both') out.authorization = `bearer ${key}`;
      if (h.auth === 'Bearer') out.authorization = `Bearer ${key}`;
      if (h.auth === 'BEARER  ') out.authorization = `BEARER  ${key}`;
      if (h.auth === 'both-differ') out.authorization = `Bearer ${key}x`;
      if (h.auth === 'garbled') out.authorization = `${key} Bearer`;
      if (h.beta !== undefined) out['anthropic-beta'] = h.beta.replace(/[^\x20-\x7e]/g, '');
      if (h.version !== undefined) out['anthropic-version'] = h.version.replace(/[^\x20-\x7e]/g, '');
      if (h.tollgateUser !== undefined) out['x-tollgate-user'] = h.tollgateUser.replace(/[^\x20-\x7e]/g, '');
      return out;
    });

/** A fuzzed request against `/v1/messages` (mostly) or `/v1/messages/count_tokens`, with `key`. */
export function fuzzRequest(key: string): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(
      bodyObject,
      headersFor(key),
      fc.constantFrom('/v1/messages', '/v1/messages', '/v1/messages', '/v1/messages/count_tokens'),
    )
    .chain(([body, headers, path]) =>
      bytesOf(JSON.stringify(body)).map((bytes) => ({ body: bytes, headers, path })),
    );
}
