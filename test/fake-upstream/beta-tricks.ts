// Misbehaviour chosen by the client through `anthropic-beta` values (so a test drives it through an
// unmodified SDK, and so it reaches the fake only when Tollgate forwards the client's header):
//   fake-unauthorized            401 authentication_error although the key is valid (a beta the
//                                upstream refuses with 401); the key's own /v1/models call still works
//   fake-unauthorized-after-MS   the same 401, sent MS milliseconds after the request arrived
//   fake-echo-key                400 whose message echoes the presented key: whole, its first 40
//                                characters, a 30-character middle run, base64, base64url (shifted),
//                                hex, URL-encoded — and the last user message's text; its `request-id`
//                                header carries a 30-character run of the key, and it sends the org's
//                                `anthropic-ratelimit-*` headers
//   fake-echo-key-midstream      with `[[fake fault=midstream-error]]` on a stream, the mid-stream `error`
//                                event's message carries the same echo (the stream itself is answered)
import { setTimeout as sleep } from 'node:timers/promises';
import type { Exchange } from './exchange.js';
import { EVENT_OVERLOADED, errorBody, sendJson, sse } from './wire.js';

function betas(ex: Exchange): string[] {
  return ex.record.headers.anthropicBeta;
}

function lastUserText(body: unknown): string {
  const messages = (body as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(messages)) return '';
  const last = messages.at(-1) as { content?: unknown } | undefined;
  if (typeof last?.content === 'string') return last.content;
  if (Array.isArray(last?.content)) {
    return last.content
      .map((b: unknown) =>
        typeof (b as { text?: unknown }).text === 'string' ? (b as { text: string }).text : '',
      )
      .join(' ');
  }
  return '';
}

/** The echo of `key` an upstream error might carry, in every form the scrubber must catch. */
export function keyEcho(key: string): string {
  const bytes = Buffer.from(key);
  return [
    `key ${key}`,
    `prefix ${key.slice(0, 40)}`,
    `middle ${key.slice(20, 50)}`,
    `b64 ${bytes.toString('base64')}`,
    `b64url+1 ${bytes.subarray(1).toString('base64url')}`,
    `b64+2 ${bytes.subarray(2).toString('base64')}`,
    `hex ${bytes.toString('hex')}`,
    `url ${encodeURIComponent(key)}`,
  ].join(' | ');
}

/** Answers the request when one of its beta values asks for a trick; false when none applies. */
export async function answerBetaTrick(ex: Exchange, key: string | null, body: unknown): Promise<boolean> {
  for (const beta of betas(ex)) {
    const unauthorized = /^fake-unauthorized(?:-after-(\d+))?$/.exec(beta);
    if (unauthorized) {
      if (unauthorized[1]) await sleep(Number(unauthorized[1]));
      ex.settle(401, 'error');
      sendJson(ex.res, 401, ex.requestId, errorBody(401, 'invalid x-api-key', ex.requestId));
      return true;
    }
    if (beta === 'fake-echo-key' && key !== null) {
      const message = `unsupported value: ${keyEcho(key)} | echo ${lastUserText(body)}`;
      ex.settle(400, 'error');
      sendJson(ex.res, 400, `req_${key.slice(10, 40)}`, errorBody(400, message, ex.requestId), {
        'anthropic-ratelimit-requests-limit': '4000',
        'anthropic-ratelimit-requests-remaining': '3999',
        'anthropic-ratelimit-tokens-limit': '2000000',
      });
      return true;
    }
  }
  return false;
}

/** The `error` event a midstream-error fault sends: echoing the key when `fake-echo-key-midstream` asks. */
export function midstreamErrorEvent(ex: Exchange, key: string | null): string {
  if (key === null || !betas(ex).includes('fake-echo-key-midstream')) return EVENT_OVERLOADED;
  return sse(
    'error',
    JSON.stringify({
      type: 'error',
      error: { type: 'overloaded_error', message: `Overloaded: ${keyEcho(key)}` },
    }),
  );
}
