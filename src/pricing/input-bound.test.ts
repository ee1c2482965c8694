import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countInputTokens } from '../../test/fake-upstream/index.js';
import {
  BLOCK_OVERHEAD_TOKENS,
  DEFAULT_SERVER_TOOL_RESULT_ALLOWANCE,
  DOCUMENT_OVERHEAD_TOKENS,
  type InputBoundOptions,
  inputTokenUpperBound,
  MESSAGE_OVERHEAD_TOKENS,
  REQUEST_OVERHEAD_TOKENS,
  TOOL_OVERHEAD_TOKENS,
  TOOL_USE_PROMPT_TOKENS,
  TYPED_TOOL_OVERHEAD_TOKENS,
  webSearchUsesBound,
} from './input-bound.js';

const opts: InputBoundOptions = { imageTokenAllowance: 1_600, documentTokenAllowance: 50_000 };

function tokens(body: unknown, o: InputBoundOptions = opts): number {
  const bound = inputTokenUpperBound(body, o);
  if ('unbounded' in bound) throw new Error(`unbounded: ${bound.unbounded}`);
  return bound.tokens;
}

function reason(body: unknown, o: InputBoundOptions = opts): string {
  const bound = inputTokenUpperBound(body, o);
  if (!('unbounded' in bound)) throw new Error(`bounded at ${bound.tokens}`);
  return bound.unbounded;
}

const BASE = REQUEST_OVERHEAD_TOKENS;
const MSG = MESSAGE_OVERHEAD_TOKENS;
const BLOCK = BLOCK_OVERHEAD_TOKENS;
const DOC = DOCUMENT_OVERHEAD_TOKENS;

describe('inputTokenUpperBound — rules', () => {
  it('counts UTF-8 bytes of text plus fixed overheads', () => {
    const body = {
      model: 'm',
      max_tokens: 10,
      system: 'héllo',
      messages: [{ role: 'user', content: '日本' }],
    };
    expect(tokens(body)).toBe(BASE + (6 + BLOCK) + MSG + 6);
  });

  it('counts text, thinking, tool_use JSON and tool_result content', () => {
    const toolUse = { type: 'tool_use', id: 'tu_1', name: 'f', input: { q: 'x' } };
    const body = {
      messages: [
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'abc', signature: 'sig' },
            { type: 'text', text: 'hi' },
            toolUse,
          ],
        },
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: 'tu_1', content: [{ type: 'text', text: 'done' }] }],
        },
      ],
    };
    const toolUseBytes = JSON.stringify(toolUse).length;
    expect(tokens(body)).toBe(
      BASE + 2 * MSG + (6 + BLOCK) + (2 + BLOCK) + (toolUseBytes + BLOCK) + (4 + (4 + BLOCK) + BLOCK),
    );
  });

  it('reserves the allowance for images and for PDF / URL / file documents, but counts text documents', () => {
    const image = (source: unknown) => ({ type: 'image', source });
    const doc = (source: unknown) => ({ type: 'document', source, title: 'T' });
    const body = {
      messages: [
        {
          role: 'user',
          content: [
            image({ type: 'base64', media_type: 'image/png', data: 'A'.repeat(100_000) }),
            image({ type: 'url', url: 'https://example.com/a.png' }),
            doc({ type: 'base64', media_type: 'application/pdf', data: 'JVBER' }),
            doc({ type: 'file', file_id: 'file_1' }),
            doc({ type: 'text', media_type: 'text/plain', data: 'plain text' }),
            doc({ type: 'content', content: [{ type: 'text', text: 'chunk' }] }),
          ],
        },
      ],
    };
    expect(tokens(body)).toBe(
      BASE +
        MSG +
        2 * (1_600 + BLOCK) +
        2 * (DOC + 1 + 50_000 + BLOCK) +
        (DOC + 1 + 10 + BLOCK) +
        (DOC + 1 + 5 + BLOCK + BLOCK),
    );
  });

  it('refuses to bound a base64 document over 32 MB', () => {
    const data = 'A'.repeat(32 * 1024 * 1024 + 1);
    const body = {
      messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'base64', data } }] }],
    };
    expect(reason(body)).toMatch(/32 MB/);
  });

  it('counts unknown blocks as JSON, plus allowances for media nested inside them', () => {
    const block = {
      type: 'web_fetch_tool_result',
      tool_use_id: 'srvtoolu_1',
      content: { type: 'web_fetch_result', content: { type: 'document', source: { type: 'url', url: 'u' } } },
    };
    const body = { messages: [{ role: 'assistant', content: [block] }] };
    expect(tokens(body)).toBe(BASE + MSG + JSON.stringify(block).length + DOC + 50_000 + BLOCK);
  });

  it('counts tool definitions, the tool-use prompt and typed-tool definitions', () => {
    const custom = { name: 'get_weather', input_schema: { type: 'object' } };
    const bash = { type: 'bash_20250124', name: 'bash' };
    const body = { messages: [], tools: [custom, bash] };
    expect(tokens(body)).toBe(
      BASE +
        TOOL_USE_PROMPT_TOKENS +
        JSON.stringify(custom).length +
        TOOL_OVERHEAD_TOKENS +
        JSON.stringify(bash).length +
        TOOL_OVERHEAD_TOKENS +
        TYPED_TOOL_OVERHEAD_TOKENS,
    );
  });

  it('bounds server-tool samplings: each re-reads the prompt, the output so far and the results before it', () => {
    const search = { type: 'web_search_20250305', name: 'web_search', max_uses: 3 };
    const fetch = { type: 'web_fetch_20250910', name: 'web_fetch', max_uses: 2, max_content_tokens: 5_000 };
    const toolBytes = (t: unknown) =>
      JSON.stringify(t).length + TOOL_OVERHEAD_TOKENS + TYPED_TOOL_OVERHEAD_TOKENS;
    const p = BASE + TOOL_USE_PROMPT_TOKENS + toolBytes(search) + toolBytes(fetch);
    const r = DEFAULT_SERVER_TOOL_RESULT_ALLOWANCE;
    // 1 + 5 samplings; the largest results (searches, 25k) come first, then the fetches (5,000 + 1,024).
    const samplings = (p0: number, out: number, rs: number) =>
      p0 +
      (p0 + out + rs) +
      (p0 + out + 2 * rs) +
      (p0 + out + 3 * rs) +
      (p0 + out + 3 * rs + 6_024) +
      (p0 + out + 3 * rs + 2 * 6_024);
    expect(tokens({ tools: [search, fetch] })).toBe(samplings(p, 0, r));
    // With 10-token search results the fetches are the largest and come first.
    const f = 2 * 6_024;
    expect(tokens({ tools: [search, fetch] }, { ...opts, serverToolResultAllowance: 10 })).toBe(
      p + (p + 6_024) + (p + f) + (p + f + 10) + (p + f + 20) + (p + f + 30),
    );
    // The output of earlier samplings is read again by the later ones.
    const withMax = { tools: [search, fetch], max_tokens: 1_000 };
    expect(tokens(withMax)).toBe(samplings(p, 1_000, r));
    // Every sampling is capped at the context window.
    expect(tokens(withMax, { ...opts, contextWindowTokens: p + 1_000 + r + 1 })).toBe(
      p + (p + 1_000 + r) + 4 * (p + 1_000 + r + 1),
    );
    // A huge max_uses is summed in closed form (no loop per use) and capped per sampling.
    const many = { tools: [{ ...search, max_uses: 100_000 }] };
    const pm = tokens({ tools: [{ ...search, max_uses: 0 }] }) + '100000'.length - '0'.length;
    let loop = pm;
    for (let k = 1; k <= 100_000; k++) loop += Math.min(1_000_000, pm + k * r);
    expect(tokens(many, { ...opts, contextWindowTokens: 1_000_000 })).toBe(loop);
    expect(reason({ tools: [{ ...search, max_uses: 1e12 }] }, { ...opts, contextWindowTokens: 1e6 })).toMatch(
      /too large/,
    );
  });

  it('is unbounded for a web search without max_uses unless a default is given', () => {
    const body = { tools: [{ type: 'web_search_20250305', name: 'web_search' }] };
    expect(reason(body)).toMatch(/max_uses/);
    const p = tokens(body, { ...opts, defaultMaxUses: 0 });
    expect(tokens(body, { ...opts, defaultMaxUses: 2, serverToolResultAllowance: 100 })).toBe(
      p + (p + 100) + (p + 200),
    );
  });

  it('is unbounded for code execution and MCP servers, and for non-object bodies', () => {
    expect(reason({ tools: [{ type: 'code_execution_20250825', name: 'code_execution' }] })).toMatch(
      /code_execution/,
    );
    expect(reason({ messages: [], mcp_servers: [{ type: 'url', url: 'https://mcp' }] })).toMatch(/MCP/);
    expect(tokens({ messages: [], mcp_servers: [] })).toBe(BASE);
    expect(reason([])).toMatch(/object/);
    expect(reason(null)).toMatch(/object/);
  });

  it('counts unknown top-level fields but not sampling parameters', () => {
    const plain = { model: 'm', max_tokens: 5, temperature: 1, stream: true, metadata: { user_id: 'u' } };
    expect(tokens(plain)).toBe(BASE);
    const schema = { format: { type: 'json_schema', schema: { type: 'object' } } };
    expect(tokens({ ...plain, output_config: schema })).toBe(BASE + JSON.stringify(schema).length + 1_024);
  });

  it('reports whether a 1 h cache write is possible', () => {
    const oneHour = { type: 'ephemeral', ttl: '1h' };
    const at = (body: unknown) => {
      const bound = inputTokenUpperBound(body, opts);
      return 'tokens' in bound && bound.cacheWrite1hPossible;
    };
    expect(at({ messages: [{ role: 'user', content: 'x' }] })).toBe(false);
    expect(at({ cache_control: oneHour, messages: [] })).toBe(true);
    expect(at({ system: [{ type: 'text', text: 's', cache_control: oneHour }] })).toBe(true);
    expect(at({ tools: [{ name: 't', cache_control: oneHour }] })).toBe(true);
    expect(at({ system: [{ type: 'text', text: 's', cache_control: { type: 'ephemeral' } }] })).toBe(false);
    const nested = {
      type: 'tool_result',
      tool_use_id: 'x',
      content: [{ type: 'text', text: 'r', cache_control: oneHour }],
    };
    expect(at({ messages: [{ role: 'user', content: [nested] }] })).toBe(true);
  });
});

describe('inputTokenUpperBound ≥ the fake upstream token count', () => {
  const text = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.string({ unit: 'binary', maxLength: 100 }),
    fc.string({ unit: 'grapheme', maxLength: 50 }),
    fc.constantFrom('', '\ud800', 'a\udc00b', '\u0000\n"\\'),
  );
  const cacheControl = fc.option(
    fc.record({ type: fc.constant('ephemeral'), ttl: fc.constantFrom('5m', '1h') }),
    {
      nil: undefined,
    },
  );
  const source = fc.oneof(
    fc.record({
      type: fc.constant('base64'),
      media_type: fc.constant('application/pdf'),
      data: fc.base64String(),
    }),
    fc.record({ type: fc.constant('url'), url: fc.webUrl() }),
    fc.record({ type: fc.constant('file'), file_id: text }),
    fc.record({ type: fc.constant('text'), data: text }),
  );
  const leaf = fc.oneof(
    fc.record(
      { type: fc.constant('text'), text, cache_control: cacheControl },
      { requiredKeys: ['type', 'text'] },
    ),
    fc.record({ type: fc.constant('image'), source }),
    fc.record({ type: fc.constant('document'), source, title: fc.option(text, { nil: undefined }) }),
    fc.record({ type: fc.constant('thinking'), thinking: text, signature: text }),
    fc.record({ type: fc.constant('tool_use'), id: text, name: text, input: fc.jsonValue({ maxDepth: 3 }) }),
    fc.record({ type: fc.constant('redacted_thinking'), data: text }),
    fc.record({ type: text, payload: fc.jsonValue({ maxDepth: 2 }) }),
    text,
  );
  const block = fc.oneof(
    { weight: 4, arbitrary: leaf },
    fc.record({
      type: fc.constant('tool_result'),
      tool_use_id: text,
      content: fc.oneof(text, fc.array(leaf, { maxLength: 4 })),
    }),
  );
  const content = fc.oneof(text, fc.array(block, { maxLength: 6 }));
  const message = fc.record({ role: fc.constantFrom('user', 'assistant'), content });
  const tool = fc.record(
    {
      name: text,
      description: text,
      input_schema: fc.jsonValue({ maxDepth: 3 }),
      cache_control: cacheControl,
    },
    { requiredKeys: ['name', 'input_schema'] },
  );
  const body = fc.record(
    {
      model: fc.constant('claude-sonnet-4-6'),
      max_tokens: fc.nat(),
      system: fc.oneof(text, fc.array(block, { maxLength: 3 })),
      messages: fc.array(message, { maxLength: 8 }),
      tools: fc.array(tool, { maxLength: 4 }),
      cache_control: cacheControl,
    },
    { requiredKeys: ['model', 'messages'] },
  );

  it('holds for random bodies', () => {
    fc.assert(
      fc.property(body, (b) => {
        expect(tokens(b)).toBeGreaterThanOrEqual(countInputTokens(b));
      }),
      { numRuns: 1_000 },
    );
  });
});

describe('inputTokenUpperBound — speed', () => {
  it('bounds a 1 MB body in well under 10 ms', () => {
    const paragraph = 'Tollgate reserves a worst case before it forwards. Ünïcödé and 日本語 too. '.repeat(
      40,
    );
    const messages = [];
    for (let i = 0; i < 300; i++) {
      messages.push({ role: 'user', content: [{ type: 'text', text: paragraph }] });
      messages.push({
        role: 'assistant',
        content: [
          { type: 'tool_use', id: `tu_${i}`, name: 'search', input: { query: paragraph.slice(0, 300) } },
        ],
      });
    }
    const body = { model: 'claude-sonnet-4-6', max_tokens: 1_000, system: paragraph, messages };
    expect(JSON.stringify(body).length).toBeGreaterThan(1_000_000);
    let best = Number.POSITIVE_INFINITY;
    for (let run = 0; run < 20; run++) {
      const started = performance.now();
      tokens(body);
      best = Math.min(best, performance.now() - started);
    }
    expect(best).toBeLessThan(10);
  });
});

describe('webSearchUsesBound', () => {
  it('sums max_uses and patches tools that lack one, without mutating the input', () => {
    const tools = [
      { name: 'custom', input_schema: {} },
      { type: 'web_search_20250305', name: 'web_search', max_uses: 3 },
      { type: 'web_search_20250305', name: 'web_search_2' },
      { type: 'web_fetch_20250910', name: 'web_fetch', max_uses: 'many' },
    ];
    const body = { tools };
    const before = JSON.stringify(body);
    const result = webSearchUsesBound(body, 5);
    expect(result.uses).toBe(8);
    expect(result.fetchUses).toBe(5);
    expect(result.patchedTools).toEqual([
      tools[0],
      tools[1],
      { type: 'web_search_20250305', name: 'web_search_2', max_uses: 5 },
      { type: 'web_fetch_20250910', name: 'web_fetch', max_uses: 5, max_content_tokens: 25_000 },
    ]);
    expect(JSON.stringify(body)).toBe(before);
    // The patched body is bounded without a default.
    expect(inputTokenUpperBound({ tools: result.patchedTools }, opts)).toHaveProperty('tokens');
  });

  it('returns null when nothing needs patching', () => {
    expect(webSearchUsesBound({ tools: [{ type: 'web_search_20250305', max_uses: 0 }] }, 5)).toEqual({
      uses: 0,
      fetchUses: 0,
      patchedTools: null,
    });
    expect(webSearchUsesBound({ messages: [] }, 5)).toEqual({ uses: 0, fetchUses: 0, patchedTools: null });
    expect(webSearchUsesBound('nope', 5)).toEqual({ uses: 0, fetchUses: 0, patchedTools: null });
  });

  it('rejects a bad default', () => {
    expect(() => webSearchUsesBound({}, -1)).toThrow(/defaultMaxUses/);
  });
});
