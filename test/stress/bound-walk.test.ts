// `npm run test:stress`: the request bound of adversarial bodies near the 32 MB limit takes no longer than
// parsing their JSON (the case: a 30 MB body nested 14 levels held the event loop 4.3 s).
import { describe, expect, it } from 'vitest';
import { boundRequest } from '../../src/gateway/request-bound.js';
import { createPriceBook } from '../../src/pricing/models.js';

const price = createPriceBook({}).lookup('claude-sonnet-4-6');
const policy = {
  modelsAllowed: null,
  orgId: 'org',
  promptCaching: 'auto' as const,
  webSearchDefaultMaxUses: 5,
  imageTokenAllowance: 1_600,
  documentTokenAllowance: 200_000,
};

type Json = Record<string, unknown>;

/** Unknown blocks holding documents holding unknown blocks…, `depth` levels, ~`bytes` of text spread over them. */
function nested(depth: number, bytes: number): Json {
  const chunk = 'x'.repeat(Math.floor(bytes / depth));
  let inner: unknown = { type: 'text', text: chunk };
  for (let i = 0; i < depth; i++) {
    inner = {
      type: 'search_result',
      source: 's',
      title: chunk,
      content: [{ type: 'document', source: { type: 'content', content: [inner] } }],
    };
  }
  return { model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: [inner] }] };
}

/** Many small unknown blocks, each with a nested image and a 1h breakpoint. */
function wide(bytes: number): Json {
  const blocks: unknown[] = [];
  const block = {
    type: 'future',
    items: [{ type: 'image', source: { type: 'url', url: 'u' } }],
    cache_control: { type: 'ephemeral', ttl: '1h' },
    pad: 'y'.repeat(100),
  };
  const size = JSON.stringify(block).length;
  for (let n = 0; n < bytes / size; n++) blocks.push(block);
  return { model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: blocks }] };
}

/** Text full of characters JSON escapes, and tools with large schemas. */
function escapes(bytes: number): Json {
  const text = '"\\\n\u0001'.repeat(bytes / 4 / 12);
  const tools = Array.from({ length: 50 }, (_, i) => ({
    name: `t${i}`,
    input_schema: { type: 'object', description: text.slice(0, bytes / 1000) },
  }));
  return {
    model: 'claude-sonnet-4-6',
    max_tokens: 100,
    system: text,
    tools,
    messages: [{ role: 'user', content: [{ type: 'text', text }] }],
  };
}

function best(run: () => void): number {
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    run();
    min = Math.min(min, performance.now() - start);
  }
  return min;
}

describe('the request bound is linear and cheap next to parsing', () => {
  const corpus: Array<[string, Json]> = [
    ['30 MB nested 14 levels', nested(14, 30e6)],
    ['30 MB nested 12 levels, text at every level', nested(12, 30e6)],
    ['30 MB of small unknown blocks', wide(30e6)],
    ['30 MB of escaped text and big tools', escapes(30e6)],
  ];
  for (const [name, body] of corpus) {
    it(name, () => {
      if (!price) throw new Error('no price');
      const raw = JSON.stringify(body);
      const parseMs = best(() => JSON.parse(raw));
      const boundMs =
        best(() => {
          const result = boundRequest(policy, price, JSON.parse(raw) as Json, {});
          if (!result.ok) throw new Error(result.unbounded);
        }) - parseMs;
      console.log(
        `${name}: ${(raw.length / 1e6).toFixed(1)} MB, JSON.parse ${parseMs.toFixed(0)} ms, bound ${boundMs.toFixed(0)} ms`,
      );
      // The bound serialises each value at most once: no worse than parsing (with room for a noisy host).
      expect(boundMs).toBeLessThan(2 * parseMs + 50);
    });
  }
});
