// Relaying a successful upstream answer to the client: JSON is read whole (to price it) and sent
// after its usage record is durable; SSE is relayed chunk by chunk as it arrives, usage is tapped on
// the side, and the chunk that completes the stream is held until the record is durable.
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { type Usage, usageFromAnthropic } from '../pricing/cost.js';
import { headerOf } from './attempts.js';
import { createUsageTap } from './sse/usage-tap.js';
import { type ChargeBasis, reportedUsage, streamUsage } from './usage-record.js';

const MAX_JSON_RESPONSE = 64 * 1024 * 1024;

export interface Relayed {
  /** What to charge; null: the upstream's figures are missing or unreadable, charge the reserved worst case. */
  usage: Usage | null;
  /** The stream ended before message_stop (client gone, upstream error event or broken connection). */
  partial: boolean;
  /** The usage is a bound, not the upstream's final figures (no final usage seen, or unreadable). */
  estimated: boolean;
  outcome: 'ok' | 'client_aborted' | 'midstream_error' | 'connection_lost' | 'unreadable';
  upstreamRequestId: string | null;
}

/** Reads a JSON answer and its usage; the caller records it, then calls `send`. */
export async function readJson(
  response: Dispatcher.ResponseData,
  basis: ChargeBasis,
): Promise<{ relayed: Relayed; bytes: Buffer } | { relayed: Relayed; bytes: null }> {
  const upstreamRequestId = headerOf(response.headers, 'request-id');
  let bytes: Buffer;
  try {
    bytes = await collect(response.body, MAX_JSON_RESPONSE);
  } catch {
    return {
      relayed: {
        usage: null,
        partial: true,
        estimated: true,
        outcome: 'connection_lost',
        upstreamRequestId,
      },
      bytes: null,
    };
  }
  try {
    const read = usageFromAnthropic(
      tailUsage(bytes) ?? (JSON.parse(bytes.toString('utf8')) as { usage?: unknown }).usage,
    );
    const usage = read === null ? null : reportedUsage(basis, read);
    return {
      relayed: {
        usage,
        partial: false,
        estimated: usage === null,
        outcome: usage === null ? 'unreadable' : 'ok',
        upstreamRequestId,
      },
      bytes,
    };
  } catch {
    return {
      relayed: {
        usage: null,
        partial: false,
        estimated: true,
        outcome: 'unreadable',
        upstreamRequestId,
      },
      bytes,
    };
  }
}

/**
 * A whole body, read with plain listeners (an async iterator costs several objects and a promise per
 * chunk). Rejects when the body breaks, is destroyed, or exceeds `limit` bytes.
 */
export function collect(body: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) body.destroy(new Error('response too large'));
      else chunks.push(chunk);
    });
    let ended = false;
    body.on('end', () => {
      ended = true;
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    });
    body.on('error', reject);
    // Destroyed without an error: no 'end' will come. ('close' follows every 'end' too: an Error built
    // there, stack trace and all, would cost more than the rest of the read.)
    body.on('close', () => {
      if (!ended) reject(new Error('response closed before its end'));
    });
  });
}

/**
 * Streams an SSE answer to `res`. `beforeLastByte` runs (and is awaited) after the upstream
 * finished and before the final chunk is written; it records the usage durably.
 */
export async function relayStream(
  response: Dispatcher.ResponseData,
  res: ServerResponse,
  /** The answer's headers (the caller's own object: content-type and cache-control are added to it). */
  headers: Record<string, string>,
  clientGone: () => boolean,
  basis: ChargeBasis,
  beforeLastByte: (relayed: Relayed) => Promise<void>,
  /** Scrubs what the upstream wrote from its `error` event on (an error may echo secrets). */
  scrub: (bytes: Buffer) => Promise<Buffer>,
): Promise<void> {
  const upstreamRequestId = headerOf(response.headers, 'request-id');
  headers['content-type'] = 'text/event-stream; charset=utf-8';
  headers['cache-control'] = 'no-cache';
  res.writeHead(200, headers);
  // No flushHeaders(): the head goes out with the first chunk, one write instead of two.
  const tap = createUsageTap();
  const held: Buffer[] = [];
  let broken = false;
  try {
    for await (const chunk of response.body) {
      const buffer = chunk as Buffer;
      tap.push(buffer);
      if (held.length > 0 || tap.holdsBack()) {
        held.push(buffer);
        continue;
      }
      if (!res.write(buffer)) await drained(res);
    }
  } catch {
    broken = true;
  }
  const result = tap.result();
  const gone = clientGone();
  const outcome: Relayed['outcome'] = result.complete
    ? 'ok'
    : gone
      ? 'client_aborted'
      : result.errorType !== null
        ? 'midstream_error'
        : 'connection_lost';
  const usage = streamUsage(basis, result);
  try {
    await beforeLastByte({
      usage,
      partial: !result.complete,
      estimated: usage !== result.usage || result.estimated,
      outcome,
      upstreamRequestId,
    });
  } catch (error) {
    res.destroy(); // the answer is not sent as complete when its record could not be made
    throw error;
  }
  if (gone) return;
  // Held after an `error` event began (or cut in the middle of one): scrubbed before it is sent.
  if (held.length > 0 && (result.errorType !== null || !result.complete))
    res.write(await scrub(Buffer.concat(held)));
  else for (const chunk of held) res.write(chunk);
  if (broken && !result.complete && result.errorType === null) {
    // The upstream connection broke mid-stream: tell the client in the stream's own terms.
    res.write(
      `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message: 'the upstream connection was lost mid-stream' } })}\n\n`,
    );
  }
  res.end();
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

const USAGE_KEY = Buffer.from('"usage":');

/**
 * The `usage` object of a Messages answer without parsing the whole body: Anthropic puts it last, so
 * the last `"usage":` (which cannot occur unescaped inside a string) is read and parsed alone. Returns
 * null — and the caller parses everything — unless it holds numeric input and output token counts.
 */
export function tailUsage(bytes: Buffer): unknown {
  const at = bytes.lastIndexOf(USAGE_KEY);
  if (at === -1) return null;
  const start = bytes.indexOf(0x7b /* { */, at + USAGE_KEY.length);
  if (start === -1) return null;
  let depth = 0;
  let inString = false;
  for (let i = start; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b) depth++;
    else if (c === 0x7d && --depth === 0) {
      try {
        const usage = JSON.parse(bytes.toString('utf8', start, i + 1)) as Record<string, unknown>;
        return typeof usage.input_tokens === 'number' && typeof usage.output_tokens === 'number'
          ? usage
          : null;
      } catch {
        return null;
      }
    }
  }
  return null;
}
