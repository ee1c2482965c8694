// Throughput of the usage tap, skipped unless asked for:
//   TOLLGATE_BENCH=1 npx vitest run src/gateway/sse/usage-tap.bench.test.ts
// Each case feeds a whole 32 MB stream in 16 KB chunks and prints the MB/s of its fastest run (on a
// shared machine the mean mostly measures the neighbours). The baseline is the naive tap this one
// replaces: decode every chunk, split events, JSON.parse every data line.

import { describe, expect, it } from 'vitest';
import { createUsageTap } from './usage-tap.js';

const CHUNK = 16 * 1024;
const SIZE = 32 * 1024 * 1024;

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

function stream(tokensPerDelta: number): { chunks: Buffer[]; bytes: number; deltas: number } {
  const one = sse('content_block_delta', {
    type: 'content_block_delta',
    index: 0,
    delta: { type: 'text_delta', text: 'tok '.repeat(tokensPerDelta) },
  });
  const deltas = Math.ceil(SIZE / one.length);
  const bytes = Buffer.from(
    sse('message_start', { type: 'message_start', message: { id: 'msg_1', usage: { input_tokens: 9 } } }) +
      one.repeat(deltas) +
      sse('message_delta', { type: 'message_delta', usage: { output_tokens: deltas } }) +
      sse('message_stop', { type: 'message_stop' }),
  );
  const chunks: Buffer[] = [];
  for (let k = 0; k < bytes.length; k += CHUNK) chunks.push(bytes.subarray(k, k + CHUNK));
  return { chunks, bytes: bytes.length, deltas };
}

function viaTap(chunks: Buffer[]): number {
  const tap = createUsageTap();
  for (const c of chunks) tap.push(c);
  return tap.result().deltas;
}

function naive(chunks: Buffer[]): number {
  let pending = '';
  let deltas = 0;
  for (const chunk of chunks) {
    pending += chunk.toString('utf8'); // can split a character: the naive way is also subtly wrong
    let end = pending.indexOf('\n\n');
    while (end >= 0) {
      const frame = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const parsed = JSON.parse(frame.slice(frame.indexOf('data: ') + 6)) as { type?: string };
      if (parsed.type === 'content_block_delta') deltas++;
      end = pending.indexOf('\n\n');
    }
  }
  return deltas;
}

function bestMBs(run: (chunks: Buffer[]) => number, s: ReturnType<typeof stream>, runs: number): number {
  let best = Infinity;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    expect(run(s.chunks)).toBe(s.deltas);
    best = Math.min(best, performance.now() - t0);
  }
  return s.bytes / 1e6 / (best / 1000);
}

describe.runIf(process.env.TOLLGATE_BENCH === '1')('usage tap throughput', () => {
  it('prints MB/s', () => {
    for (const tokens of [1, 5, 50]) {
      const s = stream(tokens);
      console.log(`tap, ${tokens}-token text deltas: ${bestMBs(viaTap, s, 10).toFixed(0)} MB/s`);
    }
    console.log(`naive baseline, 1-token deltas: ${bestMBs(naive, stream(1), 3).toFixed(0)} MB/s`);
    // What the gateway does per response: a new tap for a 200-delta stream that arrives in one chunk.
    const one = Buffer.from(
      Array.from({ length: 200 }, () =>
        sse('content_block_delta', {
          type: 'content_block_delta',
          index: 0,
          delta: { type: 'text_delta', text: 'tok ' },
        }),
      ).join(''),
    );
    let best = Infinity;
    for (let r = 0; r < 10; r++) {
      const t0 = performance.now();
      for (let k = 0; k < 2000; k++) expect(viaTap([one])).toBe(200);
      best = Math.min(best, (performance.now() - t0) / 2000);
    }
    console.log(`tap per 200-delta response (new tap, one chunk): ${(best * 1000).toFixed(1)} µs`);
  }, 120_000);
});
