// The walk of inputTokenUpperBound: linear in the body (counted, not timed), and a `ttl: "1h"` breakpoint
// found at any depth.

import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type InputBoundOptions, inputTokenUpperBound, jsonByteLength } from './input-bound.js';

const opts: InputBoundOptions = { imageTokenAllowance: 1_600, documentTokenAllowance: 50_000 };

function bound(body: unknown) {
  const b = inputTokenUpperBound(body, opts);
  if ('unbounded' in b) throw new Error(b.unbounded);
  return b;
}

/** Unknown blocks holding documents holding unknown blocks…, `depth` levels, `payload` at the bottom. */
function nested(depth: number, payload: string): unknown {
  let inner: unknown = { type: 'text', text: payload };
  for (let i = 0; i < depth; i++) {
    inner = {
      type: 'search_result',
      source: 's',
      title: 't',
      content: [{ type: 'document', source: { type: 'content', content: [inner] } }],
    };
  }
  return { messages: [{ role: 'user', content: [inner] }] };
}

describe('the walk is linear in the body', () => {
  afterEach(() => vi.restoreAllMocks());

  it('serialises no more than the body once, however deep unknown blocks nest', () => {
    const payload = 'x'.repeat(200_000);
    for (const depth of [1, 4, 14]) {
      const body = nested(depth, payload);
      const size = JSON.stringify(body).length;
      let serialised = 0;
      const real = JSON.stringify;
      vi.spyOn(JSON, 'stringify').mockImplementation((...args: Parameters<typeof JSON.stringify>) => {
        const text = real(...args);
        serialised += text === undefined ? 0 : text.length;
        return text;
      });
      const b = bound(body);
      vi.restoreAllMocks();
      // The old walk serialised each level again: ~depth × the payload (2.8 MB at depth 14).
      expect(serialised, `depth ${depth}`).toBeLessThanOrEqual(size);
      expect(b.tokens).toBeGreaterThanOrEqual(payload.length);
    }
  });

  it('visits each value a bounded number of times (counted through property reads)', () => {
    // Counts reads of every `type` key: the work per block, whatever the nesting.
    let reads = 0;
    const counted = (depth: number): unknown => {
      let inner: Record<string, unknown> = { type: 'text', text: 'x' };
      for (let i = 0; i < depth; i++) {
        const child = inner;
        const block: Record<string, unknown> = { content: [child] };
        Object.defineProperty(block, 'type', {
          enumerable: true,
          get: () => {
            reads++;
            return 'search_result';
          },
        });
        inner = block;
      }
      return { messages: [{ role: 'user', content: [inner] }] };
    };
    const readsAt = (depth: number) => {
      reads = 0;
      inputTokenUpperBound(counted(depth), opts);
      return reads;
    };
    const small = readsAt(50);
    const large = readsAt(200);
    // Linear: four times the blocks, about four times the reads (quadratic would be ~16×).
    expect(large / small).toBeLessThan(5);
  });
});

describe('a 1 h breakpoint anywhere', () => {
  const ttl1h = { type: 'ephemeral', ttl: '1h' };
  const cases: Array<[string, unknown]> = [
    [
      'inside a search_result block',
      {
        messages: [
          {
            role: 'user',
            content: [
              {
                type: 'search_result',
                source: 's',
                title: 't',
                content: [{ type: 'text', text: 'a', cache_control: ttl1h }],
              },
            ],
          },
        ],
      },
    ],
    [
      'inside a search_result inside a tool_result',
      {
        messages: [
          {
            role: 'user',
            content: [
              {
                type: 'tool_result',
                tool_use_id: 't1',
                content: [
                  {
                    type: 'search_result',
                    source: 's',
                    title: 't',
                    content: [{ type: 'text', text: 'a', cache_control: ttl1h }],
                  },
                ],
              },
            ],
          },
        ],
      },
    ],
    [
      'on a document nested in an unknown block',
      {
        messages: [
          {
            role: 'user',
            content: [
              {
                type: 'future_block',
                items: [{ type: 'document', source: { type: 'url', url: 'u' }, cache_control: ttl1h }],
              },
            ],
          },
        ],
      },
    ],
    ['on a tool definition', { tools: [{ name: 't', input_schema: {}, cache_control: ttl1h }] }],
    [
      'inside citations',
      {
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'a', citations: [{ cache_control: ttl1h }] }] },
        ],
      },
    ],
    ['at the top level', { cache_control: ttl1h, messages: [{ role: 'user', content: 'hi' }] }],
  ];
  for (const [name, body] of cases) {
    it(`is found ${name}`, () => {
      expect(bound(body).cacheWrite1hPossible).toBe(true);
      // Positive control: the same body with a 5 minute ttl is not a 1 h write.
      const fiveMinutes = JSON.parse(JSON.stringify(body).replaceAll('"1h"', '"5m"'));
      expect(bound(fiveMinutes).cacheWrite1hPossible).toBe(false);
    });
  }

  it('counts a by-reference document nested in an unknown block at its allowance', () => {
    const doc = { type: 'document', source: { type: 'file', file_id: 'file_1' } };
    const withDoc = bound({
      messages: [{ role: 'user', content: [{ type: 'future_block', items: [doc] }] }],
    });
    const without = bound({ messages: [{ role: 'user', content: [{ type: 'future_block', items: [] }] }] });
    expect(withDoc.tokens - without.tokens).toBeGreaterThanOrEqual(opts.documentTokenAllowance);
  });
});

describe('jsonByteLength', () => {
  it('equals the UTF-8 bytes of JSON.stringify for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(jsonByteLength(value)).toBe(Buffer.byteLength(JSON.stringify(value)));
      }),
      { seed: 7, numRuns: 2_000 },
    );
    for (const text of ['"\\\n\t\u0001\u001f\u007f', '\ud800 lone', 'é💸', '\u2028']) {
      expect(jsonByteLength({ [text]: [text, 1.5e-7, -0, true, null] })).toBe(
        Buffer.byteLength(JSON.stringify({ [text]: [text, 1.5e-7, -0, true, null] })),
      );
    }
  });
});
