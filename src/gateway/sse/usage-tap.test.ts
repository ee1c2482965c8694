import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deltaTokenEstimate } from './estimate.js';
import { createUsageTap, MAX_JSON_EVENT_BYTES, type TapResult } from './usage-tap.js';

// Builders for the wire format, byte for byte as the API writes it (compact JSON, `\n` line ends).
const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

const messageStart = (usage: Record<string, unknown>) =>
  sse('message_start', {
    type: 'message_start',
    message: {
      id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-6',
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage,
    },
  });
const blockStart = (index: number, block: Record<string, unknown>) =>
  sse('content_block_start', { type: 'content_block_start', index, content_block: block });
const delta = (index: number, d: Record<string, unknown>) =>
  sse('content_block_delta', { type: 'content_block_delta', index, delta: d });
const text = (t: string, index = 0) => delta(index, { type: 'text_delta', text: t });
const blockStop = (index: number) => sse('content_block_stop', { type: 'content_block_stop', index });
const PING = sse('ping', { type: 'ping' });
const messageDelta = (usage: Record<string, unknown>, stopReason = 'end_turn') =>
  sse('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage,
  });
const MESSAGE_STOP = sse('message_stop', { type: 'message_stop' });
const overloaded = sse('error', {
  type: 'error',
  error: { type: 'overloaded_error', message: 'Overloaded' },
});

const START_USAGE = {
  input_tokens: 377,
  cache_creation_input_tokens: 1200,
  cache_read_input_tokens: 5000,
  cache_creation: { ephemeral_5m_input_tokens: 200, ephemeral_1h_input_tokens: 1000 },
  output_tokens: 1,
  service_tier: 'standard',
};
const FINAL_USAGE = {
  input_tokens: 377,
  cache_creation_input_tokens: 1200,
  cache_read_input_tokens: 5000,
  cache_creation: { ephemeral_5m_input_tokens: 200, ephemeral_1h_input_tokens: 1000 },
  output_tokens: 93,
  server_tool_use: { web_search_requests: 2, web_fetch_requests: 1 },
};

/** The bytes of a stream with text (multi-byte characters, escapes), thinking and a tool call. */
const BODY = [
  messageStart(START_USAGE),
  blockStart(0, { type: 'thinking', thinking: '', signature: '' }),
  delta(0, { type: 'thinking_delta', thinking: 'Let me think about "this".' }),
  delta(0, { type: 'signature_delta', signature: 'EqQBCgIYAhIM1gbcDa9GJwZA2b3h' }),
  blockStop(0),
  blockStart(1, { type: 'text', text: '' }),
  PING,
  text('Héllo wörld — 日本語 🎉', 1),
  text('line one\nline two\t"quoted" \\ back', 1),
  blockStop(1),
  blockStart(2, { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: {} }),
  delta(2, { type: 'input_json_delta', partial_json: '{"location": "Zür' }),
  delta(2, { type: 'input_json_delta', partial_json: 'ich"}' }),
  blockStop(2),
];
const FULL = [...BODY, messageDelta(FINAL_USAGE, 'tool_use'), MESSAGE_STOP].join('');

function tapOf(chunks: Iterable<Buffer>): TapResult {
  const tap = createUsageTap();
  for (const chunk of chunks) tap.push(chunk);
  return tap.result();
}

const whole = (s: string | Buffer) => tapOf([typeof s === 'string' ? Buffer.from(s) : s]);

/** Splits at the given byte offsets (any order, duplicates allowed: empty chunks are legal too). */
function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...cuts].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}

/** The deltas-based estimate for text payloads, computed the slow way (JSON.stringify of each text). */
const expectedEstimate = (texts: string[]) =>
  texts.reduce((sum, t) => sum + deltaTokenEstimate(Buffer.byteLength(JSON.stringify(t)) - 2), 0);

describe('usage tap: a complete stream', () => {
  const expected: TapResult = {
    usage: {
      inputTokens: 377,
      outputTokens: 93,
      cacheWrite5mTokens: 200,
      cacheWrite1hTokens: 1000,
      cacheReadTokens: 5000,
      webSearchRequests: 2,
      webFetchRequests: 1,
      model: 'claude-sonnet-4-6',
      messageId: 'msg_01XFDUDYJgAACzvnptvVoYEL',
      stopReason: 'tool_use',
    },
    complete: true,
    errorType: null,
    estimated: false,
    deltas: 6,
    started: true,
    thinking: true,
    searchUses: 0,
    fetchUses: 0,
    inDoubt: false,
  };

  it('reads the final cumulative usage', () => {
    expect(whole(FULL)).toEqual(expected);
  });

  it('gives the same result for a split at every byte', () => {
    const bytes = Buffer.from(FULL);
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(tapOf(chunked(bytes, [cut])), `split at ${cut}`).toEqual(expected);
    }
  });

  it('gives the same result one byte at a time', () => {
    const bytes = Buffer.from(FULL);
    expect(
      tapOf(
        chunked(
          bytes,
          Array.from({ length: bytes.length }, (_, i) => i),
        ),
      ),
    ).toEqual(expected);
  });

  it('gives the same result for random chunkings', () => {
    const bytes = Buffer.from(FULL);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 40 }), (cuts) => {
        expect(tapOf(chunked(bytes, cuts))).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('gives the same result with CRLF and with lone CR line ends, split anywhere', () => {
    for (const eol of ['\r\n', '\r']) {
      const bytes = Buffer.from(FULL.replace(/\n/g, eol));
      expect(whole(bytes)).toEqual(expected);
      for (let cut = 0; cut <= bytes.length; cut++) {
        expect(tapOf(chunked(bytes, [cut])), `${JSON.stringify(eol)} at ${cut}`).toEqual(expected);
      }
    }
  });

  it('reads generated streams the same whole (in-place fast path) as one byte at a time (property)', () => {
    const payload = fc.string({ unit: fc.constantFrom('a', 'é', '日', '🎉', '"', '\\', '\n', '\r', ' ') });
    const canonical = fc.oneof(
      payload.map((t) => text(t)),
      payload.map((t) => delta(1, { type: 'thinking_delta', thinking: t })),
      payload.map((t) => delta(2, { type: 'input_json_delta', partial_json: t })),
      payload.map((t) => delta(0, { type: 'signature_delta', signature: t })),
      fc
        .nat({ max: 50 })
        .map((n) => delta(n, { type: 'citations_delta', citation: { cited_text: 'x'.repeat(n) } })),
    );
    // Near misses the fast path must leave to the general framing, with the same outcome.
    const variant = fc.oneof(
      payload.map((t) => text(t).replace('event: ', 'event:')),
      payload.map((t) => text(t).replace('\ndata: ', '\nid: 7\ndata: ')),
      payload.map((t) => text(t).replace('\n\n', '\n: comment\n\n')),
      payload.map((t) => text(t).replace('\n\n', '\r\n\r\n')),
      payload.map((t) => `data: ${text(t).split('data: ')[1]?.trimEnd()}\nevent: content_block_delta\n\n`),
      payload.map((t) => text(t).replace('"index":0', '"index":-1')),
      fc.constant(PING),
      fc.constant(': keep-alive\n\n'),
    );
    const events = fc.array(
      fc.oneof({ weight: 3, arbitrary: canonical }, { weight: 2, arbitrary: variant }),
      {
        maxLength: 12,
      },
    );
    fc.assert(
      fc.property(events, fc.boolean(), (middle, finished) => {
        const tail = finished ? messageDelta({ output_tokens: 7 }) + MESSAGE_STOP : '';
        const bytes = Buffer.from(messageStart({ input_tokens: 3 }) + middle.join('') + tail);
        const oneByOne = tapOf(
          chunked(
            bytes,
            Array.from({ length: bytes.length }, (_, i) => i),
          ),
        );
        expect(whole(bytes)).toEqual(oneByOne);
      }),
      { numRuns: 300 },
    );
  });

  it('ignores comments, unknown fields, unknown events and events without a name; strips a BOM', () => {
    const noisy = [
      '\uFEFF: hello\n\n',
      BODY[0],
      'id: 7\nretry: 1000\n: keep-alive\n\n',
      sse('future_event', { type: 'future_event', text: 'not output' }),
      `data: ${JSON.stringify({ type: 'message_delta', usage: { output_tokens: 999999 } })}\n\n`,
      'event: content_block_delta\n\n', // no data: not dispatched
      ...BODY.slice(1),
      'event:message_delta\n', // no space after the colon is legal
      `data:${JSON.stringify({ type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: FINAL_USAGE })}\n`,
      ':comment inside an event\n\n',
      MESSAGE_STOP,
    ].join('');
    expect(whole(noisy)).toEqual(expected);
  });

  it('joins multi-line data with newlines', () => {
    const [first, ...rest] = JSON.stringify({ type: 'message_delta', usage: FINAL_USAGE }).split(',');
    const multi = `event: message_delta\ndata: ${first}\ndata: ,${rest.join(',\ndata: ')}\n\n`;
    const textLines =
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,\ndata: "delta":{"type":"text_delta","text":"abcdef"}}\n\n';
    const r = whole(BODY.join('') + textLines + multi + MESSAGE_STOP);
    expect(r.usage).toMatchObject({ outputTokens: 93, inputTokens: 377, webSearchRequests: 2 });
    expect(r.deltas).toBe(7);
    expect(r.estimated).toBe(false);
  });

  it('accepts data before the event line', () => {
    const swapped = FULL.replace(/event: ([a-z_]+)\n(data: [^\n]*)\n/g, '$2\nevent: $1\n');
    expect(swapped).not.toBe(FULL);
    expect(whole(swapped)).toEqual(expected);
  });
});

describe('usage tap: usage fields', () => {
  const stream = (start: Record<string, unknown>, final: Record<string, unknown>) =>
    whole([messageStart(start), text('hi'), messageDelta(final), MESSAGE_STOP].join('')).usage;

  it('splits cache writes by TTL', () => {
    const split = (creation: unknown, total: number | null) =>
      stream(
        { input_tokens: 1, output_tokens: 1, cache_creation_input_tokens: total, cache_creation: creation },
        {
          output_tokens: 2,
        },
      );
    // Split present and consistent.
    expect(split({ ephemeral_5m_input_tokens: 30, ephemeral_1h_input_tokens: 70 }, 100)).toMatchObject({
      cacheWrite5mTokens: 30,
      cacheWrite1hTokens: 70,
    });
    // Total beyond the split: the remainder is 5-minute writes.
    expect(split({ ephemeral_5m_input_tokens: 10, ephemeral_1h_input_tokens: 70 }, 100)).toMatchObject({
      cacheWrite5mTokens: 30,
      cacheWrite1hTokens: 70,
    });
    // Only one side of the split.
    expect(split({ ephemeral_1h_input_tokens: 100 }, 100)).toMatchObject({
      cacheWrite5mTokens: 0,
      cacheWrite1hTokens: 100,
    });
    // Only the total (older API versions): all 5-minute writes.
    expect(split(undefined, 100)).toMatchObject({ cacheWrite5mTokens: 100, cacheWrite1hTokens: 0 });
    expect(split(null, 100)).toMatchObject({ cacheWrite5mTokens: 100, cacheWrite1hTokens: 0 });
    // Only the split.
    expect(split({ ephemeral_5m_input_tokens: 5, ephemeral_1h_input_tokens: 6 }, null)).toMatchObject({
      cacheWrite5mTokens: 5,
      cacheWrite1hTokens: 6,
    });
    expect(split(null, null)).toMatchObject({ cacheWrite5mTokens: 0, cacheWrite1hTokens: 0 });
  });

  it('takes input and cache figures from message_delta when repeated there, else from message_start', () => {
    const start = { ...START_USAGE };
    expect(stream(start, { output_tokens: 9 })).toMatchObject({
      inputTokens: 377,
      cacheReadTokens: 5000,
      cacheWrite5mTokens: 200,
      cacheWrite1hTokens: 1000,
      outputTokens: 9,
    });
    expect(
      stream(start, {
        input_tokens: 400,
        cache_read_input_tokens: null, // null is "not reported", not zero
        cache_creation_input_tokens: 50,
        cache_creation: { ephemeral_5m_input_tokens: 50, ephemeral_1h_input_tokens: 0 },
        output_tokens: 9,
      }),
    ).toMatchObject({
      inputTokens: 400,
      cacheReadTokens: 5000,
      cacheWrite5mTokens: 50,
      cacheWrite1hTokens: 0,
    });
  });

  it('takes the last of several cumulative message_delta events', () => {
    const r = whole(
      [
        messageStart({ input_tokens: 10, output_tokens: 1 }),
        text('abc'),
        messageDelta({ output_tokens: 5, server_tool_use: { web_search_requests: 1 } }, 'pause_turn'),
        messageDelta({ output_tokens: 8, server_tool_use: { web_search_requests: 3 } }),
        MESSAGE_STOP,
      ].join(''),
    );
    expect(r.usage).toMatchObject({ outputTokens: 8, webSearchRequests: 3, webFetchRequests: 0 });
    expect(r.usage.stopReason).toBe('end_turn');
    expect(r.estimated).toBe(false);
  });

  it('counts web searches and fetches from the final usage', () => {
    expect(
      stream(
        { input_tokens: 1, output_tokens: 1 },
        { output_tokens: 40, server_tool_use: { web_search_requests: 4, web_fetch_requests: 2 } },
      ),
    ).toMatchObject({ webSearchRequests: 4, webFetchRequests: 2 });
  });

  it('flags malformed numbers (the record falls back to the worst case) and rounds fractions up', () => {
    for (const bad of [-5, '12', 1e300, 2e9, true, {}]) {
      const r = whole(
        messageStart({ input_tokens: 1, output_tokens: 1 }) +
          messageDelta({ input_tokens: bad, output_tokens: 3 }) +
          MESSAGE_STOP,
      );
      expect(r.inDoubt, String(bad)).toBe(true);
    }
    const r = whole(
      messageStart({ input_tokens: 1, output_tokens: 1 }) +
        messageDelta({ output_tokens: 2.5 }) +
        MESSAGE_STOP,
    );
    expect(r).toMatchObject({ inDoubt: false, usage: { outputTokens: 3 } });
    const ok = whole(
      messageStart({ input_tokens: null, output_tokens: 1 }) + messageDelta({ output_tokens: 3 }),
    );
    expect(ok.inDoubt).toBe(false); // null is "not reported", not malformed
  });
});

describe('usage tap: streams cut short', () => {
  const HEAD = messageStart({ input_tokens: 50, cache_read_input_tokens: 7, output_tokens: 1 }) + PING;

  it('estimates output from the deltas when no message_delta arrived', () => {
    const texts = ['Hello', ' there, ', 'wörld — 日本語', '"quoted"\n'];
    const r = whole(HEAD + blockStart(0, { type: 'text', text: '' }) + texts.map((t) => text(t)).join(''));
    expect(r).toMatchObject({ complete: false, estimated: true, errorType: null, deltas: 4 });
    expect(r.usage).toMatchObject({ inputTokens: 50, cacheReadTokens: 7, stopReason: null });
    expect(r.usage.outputTokens).toBe(expectedEstimate(texts));
  });

  it('never estimates below the last reported output_tokens', () => {
    const start = messageStart({ input_tokens: 50, output_tokens: 40 });
    expect(whole(start + text('ab')).usage.outputTokens).toBe(40);
  });

  it('counts each delta kind by its payload', () => {
    const citation = {
      type: 'char_location',
      cited_text: 'The grass is green.',
      document_index: 0,
      document_title: 'Facts',
      start_char_index: 0,
      end_char_index: 20,
    };
    const future = { type: 'future_delta', body: 'y'.repeat(30) };
    const events = [
      [delta(0, { type: 'thinking_delta', thinking: 'x'.repeat(30) }), 11],
      [delta(0, { type: 'signature_delta', signature: 'S'.repeat(300) }), 1],
      [delta(0, { type: 'input_json_delta', partial_json: '{"a":1}' }), deltaTokenEstimate(9)],
      [delta(0, { type: 'citations_delta', citation }), deltaTokenEstimate(JSON.stringify(citation).length)],
      // A delta type this code does not know: everything in the delta object counts.
      [delta(0, future), deltaTokenEstimate(JSON.stringify(future).length)],
      // Another key order: counted from the payload key to the end (an over-estimate, never under).
      [
        'event: content_block_delta\ndata: {"delta":{"text":"abcdef","type":"text_delta"},"index":0}\n\n',
        deltaTokenEstimate('abcdef","type":"text_delta"},"index":0}'.length - 3),
      ],
    ] as const;
    for (const [event, tokens] of events) {
      expect(whole(event).usage.outputTokens, event).toBe(tokens);
      // The general scan (envelope split across chunks) agrees with the fast path.
      const bytes = Buffer.from(event);
      for (let cut = 0; cut < bytes.length; cut++) {
        expect(tapOf(chunked(bytes, [cut])).usage.outputTokens, `${event} at ${cut}`).toBe(tokens);
      }
    }
  });

  it('gives the same result wherever the stream is cut and however it was chunked', () => {
    const bytes = Buffer.from(FULL.slice(0, FULL.indexOf('event: message_delta')));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: bytes.length }),
        fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 10 }),
        (end, cuts) => {
          const prefix = bytes.subarray(0, end);
          const reference = whole(prefix);
          const pieces = chunked(
            prefix,
            cuts.filter((c) => c <= end),
          );
          expect(tapOf(pieces)).toEqual(reference);
          expect(reference.estimated).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('counts a delta cut off mid-event', () => {
    const event = text('x'.repeat(300));
    const r = whole(HEAD + event.slice(0, event.length - 10));
    expect(r.deltas).toBe(0);
    expect(r.usage.outputTokens).toBeGreaterThanOrEqual(deltaTokenEstimate(300 - 10));
  });

  it('records an error event mid-stream', () => {
    const r = whole(HEAD + text('tok tok tok ') + overloaded);
    expect(r).toMatchObject({ complete: false, estimated: true, errorType: 'overloaded_error', deltas: 1 });
    expect(r.usage).toMatchObject({ inputTokens: 50, outputTokens: deltaTokenEstimate(12) });
    expect(whole(`${HEAD}event: error\ndata: {not json\n\n`).errorType).toBe('unknown_error');
  });

  it('is final, not estimated, once message_delta usage arrived, even without message_stop', () => {
    const r = whole(HEAD + text('abc') + messageDelta({ output_tokens: 2 }));
    expect(r).toMatchObject({ complete: false, estimated: false });
    expect(r.usage.outputTokens).toBe(2);
    // ... but not when more deltas followed it.
    const later = whole(HEAD + messageDelta({ output_tokens: 2 }) + text('x'.repeat(30)));
    expect(later).toMatchObject({ estimated: true });
    expect(later.usage.outputTokens).toBe(deltaTokenEstimate(30));
  });

  it('never estimates below the word count for words of 3 bytes or more (property)', () => {
    const word = fc
      .array(fc.constantFrom('a', 'z', 'é', '日', '🎉', '"', '\\', '\n', '<', 'Q', '7'), {
        minLength: 1,
        maxLength: 8,
      })
      .map((cs) => cs.join(''))
      .filter((w) => Buffer.byteLength(w) >= 3);
    // Deltas of 1-4 words each, words separated by a space inside the delta.
    const deltas = fc.array(fc.array(word, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(deltas, fc.array(fc.nat(), { maxLength: 6 }), (groups, cuts) => {
        const stream = Buffer.from(HEAD + groups.map((g) => text(` ${g.join(' ')}`)).join(''));
        const r = tapOf(
          chunked(
            stream,
            cuts.map((c) => c % (stream.length + 1)),
          ),
        );
        const words = groups.reduce((n, g) => n + g.length, 0);
        expect(r.estimated).toBe(true);
        expect(r.usage.outputTokens).toBeGreaterThanOrEqual(words);
      }),
      { numRuns: 300 },
    );
  });
});

describe('usage tap: bounded memory and volume', () => {
  it('counts a huge delta without keeping it', () => {
    const payload = 'abc '.repeat(1_250_000); // 5 MB in one event
    const bytes = Buffer.from(messageStart({ input_tokens: 3, output_tokens: 1 }) + text(payload));
    const before = process.memoryUsage().arrayBuffers;
    const r = tapOf(
      chunked(
        bytes,
        Array.from({ length: 80 }, (_, i) => i * 65536),
      ),
    );
    expect(r.deltas).toBe(1);
    expect(r.usage.outputTokens).toBe(deltaTokenEstimate(payload.length));
    // The tap keeps no copy: nothing near the event's size was allocated (chunks are views of `bytes`).
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1024 * 1024);
  });

  it('marks an over-sized message_start or message_delta unreadable (estimated) and keeps going', () => {
    const pad = 'p'.repeat(MAX_JSON_EVENT_BYTES);
    const hugeStart = sse('message_start', {
      type: 'message_start',
      message: { id: 'msg_x', model: 'm', content: [], pad, usage: { input_tokens: 5, output_tokens: 1 } },
    });
    const r = whole(hugeStart + text('abcdef') + messageDelta({ output_tokens: 2 }) + MESSAGE_STOP);
    expect(r).toMatchObject({ complete: true, estimated: true });
    expect(r.usage).toMatchObject({ inputTokens: 0, model: null, outputTokens: deltaTokenEstimate(6) });

    const hugeDelta = sse('message_delta', { type: 'message_delta', pad, usage: { output_tokens: 2 } });
    const d = whole(
      messageStart({ input_tokens: 5, output_tokens: 1 }) + text('abc') + hugeDelta + MESSAGE_STOP,
    );
    expect(d).toMatchObject({ complete: true, estimated: true });
    expect(d.usage).toMatchObject({ inputTokens: 5, outputTokens: deltaTokenEstimate(3) });

    // Just under the cap is still parsed.
    const fits = sse('message_delta', {
      type: 'message_delta',
      pad: 'p'.repeat(MAX_JSON_EVENT_BYTES - 100),
      usage: { output_tokens: 2 },
    });
    expect(whole(messageStart({ input_tokens: 5, output_tokens: 1 }) + fits).estimated).toBe(false);
  });

  it('gets through a 10 MB stream of small deltas', () => {
    const one = text('tok ');
    const count = Math.ceil((10 * 1024 * 1024) / one.length);
    const bytes = Buffer.from(
      messageStart({ input_tokens: 9, output_tokens: 1 }) +
        one.repeat(count) +
        messageDelta({ output_tokens: count }) +
        MESSAGE_STOP,
    );
    const r = tapOf(
      chunked(
        bytes,
        Array.from({ length: Math.floor(bytes.length / 16384) }, (_, i) => i * 16384),
      ),
    );
    expect(r).toMatchObject({ complete: true, estimated: false, deltas: count });
    expect(r.usage.outputTokens).toBe(count);
  });
});
