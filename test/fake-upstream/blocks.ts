// Answers with more than text: thinking (a summary streamed, the full thinking billed), redacted
// thinking, server-tool blocks (web search / fetch with their results, each result billed as input),
// unknown block kinds and malformed usage figures. Chosen per request by directives in the last user
// message (all optional, any combination):
//   [[fake thinking=N]]          a thinking block first: a short summary in thinking_delta events and a
//                                signature_delta of `signature_kb=K` KB (default 20); bills N output tokens
//   [[fake redacted=N]]          a redacted_thinking block; bills N output tokens
//   [[fake search_blocks=1]]     each web search / fetch counted by `web_searches=` / `web_fetches=` is
//                                streamed as server_tool_use + its *_tool_result block; each result bills
//                                `result_tokens=R` input tokens (default 3000)
//   [[fake unknown_block=1]]     a block of a kind no client knows (`type: "hologram"`)
//   [[fake bad_usage=FIELD:JSON]] the final usage's FIELD is that JSON value, e.g. output_tokens:2.5,
//                                input_tokens:-4, output_tokens:1e300, output_tokens:"12"
// The text block follows these blocks. The ServedRecord's usage is what the fake billed for what it
// sent: with slow-stream it grows event by event, so a cut stream's record is its ground truth.

import type { Directives } from './prompt.js';
import type { ServedUsage } from './types.js';
import type { MessageUsage } from './wire.js';

type Json = Record<string, unknown>;

/** One event and what sending it bills. */
export interface BilledEvent {
  event: string;
  output: number;
  input: number;
  searches: number;
  fetches: number;
}

export interface ExtraBlocks {
  /** Events before the text block, in order. */
  events: BilledEvent[];
  /** Index of the text block that follows. */
  textIndex: number;
  /** Totals billed by `events`. */
  output: number;
  input: number;
  /** The final usage's malformed field, if any: [field, raw JSON value]. */
  badUsage: readonly [string, unknown] | null;
}

const SUMMARY_DELTAS = ['Considering the question. ', 'Weighing the options; ', 'settling on an answer.'];

function sse(type: string, data: Json): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

function count(params: Record<string, string>, key: string): number {
  const n = Number(params[key]);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/** The extra blocks the directives ask for; null when there are none (the plain text answer). */
export function extraBlocks(directives: Directives | null, usage: MessageUsage): ExtraBlocks | null {
  const p = directives?.params;
  if (!p) return null;
  const thinking = count(p, 'thinking');
  const redacted = count(p, 'redacted');
  const searchBlocks = p.search_blocks === '1';
  const unknown = p.unknown_block === '1';
  const badUsage = parseBadUsage(p.bad_usage);
  if (!thinking && !redacted && !searchBlocks && !unknown && !badUsage) return null;

  const events: BilledEvent[] = [];
  const push = (event: string, output = 0, input = 0, searches = 0, fetches = 0) =>
    events.push({ event, output, input, searches, fetches });
  let index = 0;
  if (thinking) {
    const i = index++;
    // The full thinking is billed as soon as the block starts: it is generated before its summary.
    push(
      sse('content_block_start', {
        type: 'content_block_start',
        index: i,
        content_block: { type: 'thinking', thinking: '', signature: '' },
      }),
      thinking,
    );
    for (const text of SUMMARY_DELTAS) {
      push(
        sse('content_block_delta', {
          type: 'content_block_delta',
          index: i,
          delta: { type: 'thinking_delta', thinking: text },
        }),
      );
    }
    const signature = 'S'.repeat(1024 * (count(p, 'signature_kb') || 20));
    push(
      sse('content_block_delta', {
        type: 'content_block_delta',
        index: i,
        delta: { type: 'signature_delta', signature },
      }),
    );
    push(sse('content_block_stop', { type: 'content_block_stop', index: i }));
  }
  if (redacted) {
    const i = index++;
    push(
      sse('content_block_start', {
        type: 'content_block_start',
        index: i,
        content_block: { type: 'redacted_thinking', data: 'EmwKAhgBEgy3va3pzix/LafPsn4a'.repeat(40) },
      }),
      redacted,
    );
    push(sse('content_block_stop', { type: 'content_block_stop', index: i }));
  }
  if (searchBlocks) {
    const resultTokens = count(p, 'result_tokens') || 3000;
    const tool = (name: 'web_search' | 'web_fetch', n: number) => {
      for (let k = 0; k < n; k++) {
        const id = `srvtoolu_fake_${name}_${k}`;
        const use = index++;
        const search = name === 'web_search' ? 1 : 0;
        push(
          sse('content_block_start', {
            type: 'content_block_start',
            index: use,
            content_block: { type: 'server_tool_use', id, name, input: {} },
          }),
          0,
          0,
          search,
          1 - search,
        );
        const input = name === 'web_search' ? '{"query": "fake query"}' : '{"url": "https://example.com/"}';
        push(
          sse('content_block_delta', {
            type: 'content_block_delta',
            index: use,
            delta: { type: 'input_json_delta', partial_json: input },
          }),
        );
        push(sse('content_block_stop', { type: 'content_block_stop', index: use }));
        const result = index++;
        const block =
          name === 'web_search'
            ? {
                type: 'web_search_tool_result',
                tool_use_id: id,
                content: [
                  {
                    type: 'web_search_result',
                    url: 'https://example.com/',
                    title: 'Example',
                    encrypted_content: 'E'.repeat(2048),
                    page_age: null,
                  },
                ],
              }
            : {
                type: 'web_fetch_tool_result',
                tool_use_id: id,
                content: {
                  type: 'web_fetch_result',
                  url: 'https://example.com/',
                  content: {
                    type: 'document',
                    source: { type: 'text', media_type: 'text/plain', data: 'page '.repeat(400) },
                  },
                },
              };
        // The result is read by the model as input of the same request.
        push(
          sse('content_block_start', { type: 'content_block_start', index: result, content_block: block }),
          0,
          resultTokens,
        );
        push(sse('content_block_stop', { type: 'content_block_stop', index: result }));
      }
    };
    tool('web_search', usage.webSearch);
    tool('web_fetch', usage.webFetch);
  }
  if (unknown) {
    const i = index++;
    push(
      sse('content_block_start', {
        type: 'content_block_start',
        index: i,
        content_block: { type: 'hologram', shape: 'cube' },
      }),
      500,
    );
    push(sse('content_block_stop', { type: 'content_block_stop', index: i }));
  }
  let output = 0;
  let input = 0;
  for (const e of events) {
    output += e.output;
    input += e.input;
  }
  return { events, textIndex: index, output, input, badUsage };
}

function parseBadUsage(value: string | undefined): readonly [string, unknown] | null {
  if (!value) return null;
  const colon = value.indexOf(':');
  if (colon <= 0) return null;
  try {
    return [value.slice(0, colon), JSON.parse(value.slice(colon + 1))];
  } catch {
    return null;
  }
}

/** The final usage object (as in a Message and in message_delta), with the malformed field if asked. */
export function finalUsage(u: MessageUsage, outputTokens: number, bad: ExtraBlocks['badUsage']): Json {
  const usage: Json = {
    input_tokens: u.input,
    cache_creation_input_tokens: u.creation5m + u.creation1h,
    cache_read_input_tokens: u.read,
    cache_creation: { ephemeral_5m_input_tokens: u.creation5m, ephemeral_1h_input_tokens: u.creation1h },
    output_tokens: outputTokens,
    server_tool_use: { web_search_requests: u.webSearch, web_fetch_requests: u.webFetch },
  };
  if (bad) usage[bad[0]] = bad[1];
  return usage;
}

export function textBlockStart(index: number): string {
  return sse('content_block_start', {
    type: 'content_block_start',
    index,
    content_block: { type: 'text', text: '' },
  });
}

export function textDelta(index: number, tokens: number): string {
  return sse('content_block_delta', {
    type: 'content_block_delta',
    index,
    delta: { type: 'text_delta', text: 'tok '.repeat(tokens) },
  });
}

export function blockStop(index: number): string {
  return sse('content_block_stop', { type: 'content_block_stop', index });
}

export function messageDelta(stopReason: string, usage: Json): string {
  return sse('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage,
  });
}

/** A JSON Message with the extra blocks' content (summaries only) and the final usage. */
export function messageWithBlocks(
  id: string,
  model: string,
  text: string,
  stopReason: string,
  usage: Json,
): string {
  return JSON.stringify({
    id,
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text }],
    stop_reason: stopReason,
    stop_sequence: null,
    usage,
  });
}

/** Adds what one sent event bills to the served record's usage. */
export function bill(usage: ServedUsage | undefined, e: BilledEvent): void {
  if (!usage) return;
  usage.output_tokens += e.output;
  usage.input_tokens += e.input;
  usage.web_search_requests += e.searches;
  usage.web_fetch_requests += e.fetches;
}
