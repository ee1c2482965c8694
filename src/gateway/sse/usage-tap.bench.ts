// Throughput of the usage tap, run on demand: `npx vitest bench --run src/gateway/sse`.
// Each task feeds a whole stream in 16 KB chunks; MB/s of each task's fastest run is printed at the end. The baseline is
// the naive tap this one replaces (decode every chunk, split events, JSON.parse every data line).

import { afterAll, bench, describe } from 'vitest';
import { createUsageTap } from './usage-tap.js';

const CHUNK = 16 * 1024;
const SIZE = 32 * 1024 * 1024;

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

function stream(tokensPerDelta: number): Buffer[] {
  const one = sse('content_block_delta', {
    type: 'content_block_delta',
    index: 0,
    delta: { type: 'text_delta', text: 'tok '.repeat(tokensPerDelta) },
  });
  const count = Math.ceil(SIZE / one.length);
  const bytes = Buffer.from(
    sse('message_start', {
      type: 'message_start',
      message: { id: 'msg_1', model: 'm', usage: { input_tokens: 9 } },
    }) +
      one.repeat(count) +
      sse('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn' },
        usage: { output_tokens: count },
      }) +
      sse('message_stop', { type: 'message_stop' }),
  );
  const chunks: Buffer[] = [];
  for (let k = 0; k < bytes.length; k += CHUNK) chunks.push(bytes.subarray(k, k + CHUNK));
  return chunks;
}

function naiveTap(chunks: Buffer[]): number {
  let pending = '';
  let output = 0;
  for (const chunk of chunks) {
    pending += chunk.toString('utf8'); // may split a character: the naive way is also subtly wrong
    let end = pending.indexOf('\n\n');
    while (end >= 0) {
      const frame = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const data = frame.slice(frame.indexOf('data: ') + 6);
      const parsed = JSON.parse(data) as { usage?: { output_tokens?: number } };
      output = parsed.usage?.output_tokens ?? output;
      end = pending.indexOf('\n\n');
    }
  }
  return output;
}

/** Fastest run per task: on a shared machine the mean mostly measures the neighbours. */
const best = new Map<string, { bytes: number; ms: number }>();

function timed(name: string, chunks: Buffer[], run: (chunks: Buffer[]) => void): () => void {
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  return () => {
    const t0 = performance.now();
    run(chunks);
    const ms = performance.now() - t0;
    if (ms < (best.get(name)?.ms ?? Infinity)) best.set(name, { bytes, ms });
  };
}

const viaTap = (chunks: Buffer[]) => {
  const tap = createUsageTap();
  for (const c of chunks) tap.push(c);
  tap.result();
};

describe('usage tap throughput (32 MB streams, 16 KB chunks)', () => {
  for (const tokens of [1, 5, 50]) {
    const chunks = stream(tokens);
    bench(`tap, ${tokens}-token text deltas`, timed(`tap, ${tokens}-token deltas`, chunks, viaTap), {
      iterations: 10,
    });
  }
  const small = stream(1);
  bench('naive decode + JSON.parse, 1-token deltas', timed('naive, 1-token deltas', small, naiveTap), {
    iterations: 3,
  });
});

afterAll(() => {
  for (const [name, t] of best) {
    console.log(`${name}: ${((t.bytes / 1e6 / t.ms) * 1000).toFixed(0)} MB/s (best run)`);
  }
});
