// The request bodies of the benchmark, and the checks made before any measurement: one request of each
// kind through a path must answer 200 with the expected shape, so a broken setup never yields a table.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRecord } from './util.js';

export const SMALL_BODY = JSON.stringify({
  model: 'claude-haiku-4-5',
  max_tokens: 50,
  messages: [{ role: 'user', content: 'Hello [[fake output_tokens=20]]' }],
});

export const STREAM_BODY = JSON.stringify({
  model: 'claude-haiku-4-5',
  max_tokens: 300,
  stream: true,
  messages: [{ role: 'user', content: 'Hello [[fake output_tokens=200]]' }],
});

export const SMALL_OUTPUT_TOKENS = 20;
export const STREAM_DELTAS = 200;

export type BodyKind = 'small' | 'stream';

export function writeBodies(dir: string): Record<BodyKind, string> {
  const small = join(dir, 'body-small.json');
  const stream = join(dir, 'body-stream.json');
  writeFileSync(small, SMALL_BODY);
  writeFileSync(stream, STREAM_BODY);
  return { small, stream };
}

function headers(key: string): Record<string, string> {
  return { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };
}

async function post(
  baseUrl: string,
  key: string,
  body: string,
): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`${baseUrl}/v1/messages`, {
    method: 'POST',
    headers: headers(key),
    body,
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', text };
}

/** One non-streaming request: 200, a `message` with text and 20 output tokens. */
export async function checkSmall(baseUrl: string, key: string): Promise<void> {
  const r = await post(baseUrl, key, SMALL_BODY);
  if (r.status !== 200)
    throw new Error(`non-streaming request answered ${r.status}: ${r.text.slice(0, 300)}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.text);
  } catch {
    throw new Error(`non-streaming answer is not JSON: ${r.text.slice(0, 300)}`);
  }
  const usage = isRecord(parsed) ? parsed.usage : undefined;
  const content = isRecord(parsed) ? parsed.content : undefined;
  if (
    !isRecord(parsed) ||
    parsed.type !== 'message' ||
    !Array.isArray(content) ||
    content.length === 0 ||
    !isRecord(usage) ||
    usage.output_tokens !== SMALL_OUTPUT_TOKENS
  ) {
    throw new Error(`non-streaming answer has an unexpected shape: ${r.text.slice(0, 300)}`);
  }
}

/** One streaming request: 200, text/event-stream, 200 text deltas, ending with message_stop. */
export async function checkStream(baseUrl: string, key: string): Promise<void> {
  const r = await post(baseUrl, key, STREAM_BODY);
  if (r.status !== 200) throw new Error(`streaming request answered ${r.status}: ${r.text.slice(0, 300)}`);
  if (!r.type.startsWith('text/event-stream')) throw new Error(`streaming answer has content-type ${r.type}`);
  const deltas = r.text.split('event: content_block_delta').length - 1;
  if (deltas !== STREAM_DELTAS)
    throw new Error(`stream carried ${deltas} text deltas, expected ${STREAM_DELTAS}`);
  const events = r.text.trimEnd().split('\n\n');
  const last = events.at(-1) ?? '';
  if (!last.startsWith('event: message_stop')) {
    throw new Error(`stream does not end with message_stop: …${r.text.slice(-200)}`);
  }
}

/** Both checks; throws with what went wrong. */
export async function verifyPath(baseUrl: string, key: string): Promise<void> {
  await checkSmall(baseUrl, key);
  await checkStream(baseUrl, key);
}

/**
 * Sends one non-streaming request with every key (`concurrency` at a time), so each key has been
 * verified once before measuring; returns the count of answers by status.
 */
export async function touchEveryKey(
  baseUrl: string,
  keys: readonly string[],
  concurrency: number,
): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  async function worker(): Promise<void> {
    for (;;) {
      const i = next++;
      const key = keys[i];
      if (key === undefined) return;
      let status = 0;
      try {
        status = (await post(baseUrl, key, SMALL_BODY)).status;
      } catch {
        status = 0;
      }
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  return statuses;
}
