// POST /v1/messages (JSON and SSE) and POST /v1/messages/count_tokens.

import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { adversarialUsage } from './adversarial.js';
import { midstreamErrorEvent } from './beta-tricks.js';
import {
  type BilledEvent,
  bill,
  blockStop,
  type ExtraBlocks,
  extraBlocks,
  finalUsage,
  messageDelta,
  messageWithBlocks,
  textBlockStart,
  textDelta,
} from './blocks.js';
import type { PromptCache } from './cache.js';
import type { Exchange } from './exchange.js';
import { resolveModel } from './models.js';
import { analyzePrompt, countInputTokens, type Directives } from './prompt.js';
import type { Fault } from './types.js';
import {
  EVENT_BLOCK_START,
  EVENT_BLOCK_STOP,
  EVENT_MESSAGE_STOP,
  EVENT_PING,
  eventMessageDelta,
  eventMessageStart,
  eventTextDelta,
  type MessageUsage,
  messageJson,
  SSE_HEADERS_BASE,
  sendError,
  sendJson,
} from './wire.js';

type Json = Record<string, unknown>;

/** Faults that shape a generation; status/reset/hang are answered before reaching this module. */
export type StreamFault = Extract<Fault, { kind: 'midstream-error' | 'slow-stream' | 'reset-midstream' }>;

export function isStreamFault(fault: Fault): fault is StreamFault {
  return fault.kind === 'midstream-error' || fault.kind === 'slow-stream' || fault.kind === 'reset-midstream';
}

export interface MessagesDeps {
  cache: PromptCache;
  chunkTokens: number;
  defaultOutputTokens: number;
  /** Bill the most the documented rules allow (adversarial.ts) instead of the emulated usage. */
  adversarial: boolean;
}

type Checked =
  | { ok: true; body: Json; model: string; maxTokens: number }
  | { ok: false; status: number; message: string };

/** The validation the real API does first: JSON object, model, max_tokens (Messages only), messages. */
function check(body: unknown, needsMaxTokens: boolean): Checked {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, status: 400, message: 'The request body is not valid JSON' };
  }
  const b = body as Json;
  if (typeof b.model !== 'string') return { ok: false, status: 400, message: 'model: Field required' };
  const maxTokens = b.max_tokens;
  if (needsMaxTokens && !(typeof maxTokens === 'number' && Number.isInteger(maxTokens) && maxTokens >= 1)) {
    return {
      ok: false,
      status: 400,
      message:
        maxTokens === undefined
          ? 'max_tokens: Field required'
          : 'max_tokens: Input should be a positive integer',
    };
  }
  if (!Array.isArray(b.messages) || b.messages.length === 0) {
    return { ok: false, status: 400, message: 'messages: at least one message is required' };
  }
  if (!resolveModel(b.model)) return { ok: false, status: 404, message: `model: ${b.model}` };
  return { ok: true, body: b, model: b.model, maxTokens: typeof maxTokens === 'number' ? maxTokens : 0 };
}

export function handleCountTokens(ex: Exchange, body: unknown): void {
  const checked = check(body, false);
  if (!checked.ok) {
    fail(ex, checked.status, checked.message);
    return;
  }
  ex.settle(200, 'complete');
  sendJson(ex.res, 200, ex.requestId, `{"input_tokens":${countInputTokens(checked.body)}}`);
}

function fail(ex: Exchange, status: number, message: string): void {
  ex.settle(status, 'error');
  sendError(ex.res, status, message, ex.requestId);
}

function serverToolCount(tools: unknown, prefix: string, requested: number | undefined): number {
  if (!requested || !Array.isArray(tools)) return 0;
  for (const tool of tools) {
    const t = tool as Json | null;
    if (typeof t?.type === 'string' && t.type.startsWith(prefix)) {
      return typeof t.max_uses === 'number' ? Math.min(requested, t.max_uses) : requested;
    }
  }
  return 0;
}

export async function handleMessages(
  ex: Exchange,
  body: unknown,
  directives: Directives | null,
  fault: StreamFault | null,
  deps: MessagesDeps,
  messageId: string,
): Promise<void> {
  const checked = check(body, true);
  if (!checked.ok) return fail(ex, checked.status, checked.message);
  const streaming = ex.record.stream;
  if (!streaming && fault) {
    // A JSON answer has no events: midstream-error is a 529, slow-stream a delay; reset-midstream
    // (below) sends the head and half the body, then breaks the connection.
    if (fault.kind === 'midstream-error') return fail(ex, 529, 'Overloaded');
    if (fault.kind === 'slow-stream') {
      await sleep(fault.delayMs);
      if (ex.settled) return;
    }
  }

  const model = resolveModel(checked.model);
  const worst = deps.adversarial
    ? adversarialUsage(checked.body, checked.model, ex.record.headers.anthropicBeta)
    : null;
  let usage: MessageUsage;
  if (worst) usage = worst;
  else {
    const prompt = analyzePrompt(checked.body, true);
    const cached = deps.cache.apply(ex.record.apiKey ?? '', model?.id ?? checked.model, prompt);
    usage = {
      ...cached,
      webSearch: serverToolCount(checked.body.tools, 'web_search_', directives?.webSearches),
      webFetch: serverToolCount(checked.body.tools, 'web_fetch_', directives?.webFetches),
    };
  }
  const requested = worst?.output ?? directives?.outputTokens ?? deps.defaultOutputTokens;
  const outputTokens = Math.min(checked.maxTokens, requested);
  const stopReason = requested > checked.maxTokens ? 'max_tokens' : 'end_turn';
  // Thinking, server-tool blocks, malformed usage (blocks.ts): their uses are billed as they are sent.
  const extra = extraBlocks(directives, usage);
  let searchesInBlocks = 0;
  let fetchesInBlocks = 0;
  for (const e of extra?.events ?? []) {
    searchesInBlocks += e.searches;
    fetchesInBlocks += e.fetches;
  }
  ex.record.usage = {
    input_tokens: usage.input,
    output_tokens: 0,
    cache_creation_5m: usage.creation5m,
    cache_creation_1h: usage.creation1h,
    cache_read: usage.read,
    web_search_requests: usage.webSearch - searchesInBlocks,
    web_fetch_requests: usage.webFetch - fetchesInBlocks,
  };

  if (!streaming && extra) {
    for (const e of extra.events) bill(ex.record.usage, e);
    ex.record.usage.output_tokens += outputTokens;
    ex.record.outputTokensSent = outputTokens;
    const final = { ...usage, input: usage.input + extra.input };
    const json = messageWithBlocks(
      messageId,
      checked.model,
      'tok '.repeat(outputTokens),
      stopReason,
      finalUsage(final, outputTokens + extra.output, extra.badUsage),
    );
    ex.settle(200, 'complete');
    sendJson(ex.res, 200, ex.requestId, json);
    return;
  }
  if (!streaming) {
    ex.record.usage.output_tokens = outputTokens;
    ex.record.outputTokensSent = outputTokens;
    const text = 'tok '.repeat(outputTokens);
    const json = messageJson(messageId, checked.model, text, stopReason, usage, outputTokens);
    if (fault?.kind === 'reset-midstream') {
      // Billed upstream, but the client never gets the usage: the connection breaks mid-body.
      ex.settle(200, 'reset');
      const bytes = Buffer.from(json);
      ex.res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': String(bytes.length),
        'request-id': ex.requestId,
      });
      ex.res.write(bytes.subarray(0, bytes.length >> 1), () => ex.req.socket.destroy());
      return;
    }
    ex.settle(200, 'complete');
    sendJson(ex.res, 200, ex.requestId, json);
    return;
  }
  const plan = { messageId, model: checked.model, usage, outputTokens, stopReason, extra };
  await stream(ex, plan, fault, deps.chunkTokens);
}

interface StreamPlan {
  messageId: string;
  model: string;
  usage: MessageUsage;
  outputTokens: number;
  stopReason: string;
  extra: ExtraBlocks | null;
}

/** Output billed by the extra blocks among events[0..i]. */
function extraOutputSent(billed: readonly (BilledEvent | null)[], i: number): number {
  let sum = 0;
  for (let k = 0; k <= i; k++) sum += billed[k]?.output ?? 0;
  return sum;
}

function writeThen(res: ServerResponse, chunk: string): Promise<void> {
  return new Promise((resolve) => res.write(chunk, () => resolve()));
}

/** Writes the SSE sequence; with slow-stream each event waits delayMs and a client abort stops it. */
async function stream(ex: Exchange, plan: StreamPlan, fault: StreamFault | null, chunkTokens: number) {
  const { res, record } = ex;
  const cut = fault?.kind === 'midstream-error' || fault?.kind === 'reset-midstream';
  const limit = cut ? Math.min(plan.outputTokens, fault.afterTokens) : plan.outputTokens;

  const x = plan.extra;
  const events = [eventMessageStart(plan.messageId, plan.model, plan.usage)];
  const tokens = [0];
  const billed: (BilledEvent | null)[] = [null];
  for (const e of x?.events ?? []) {
    events.push(e.event);
    tokens.push(0);
    billed.push(e);
  }
  events.push(x ? textBlockStart(x.textIndex) : EVENT_BLOCK_START, EVENT_PING);
  tokens.push(0, 0);
  for (let sent = 0; sent < limit; ) {
    const n = Math.min(chunkTokens, limit - sent);
    events.push(x ? textDelta(x.textIndex, n) : eventTextDelta(n));
    tokens.push(n);
    sent += n;
  }
  if (!cut) {
    events.push(
      x ? blockStop(x.textIndex) : EVENT_BLOCK_STOP,
      x
        ? messageDelta(
            plan.stopReason,
            finalUsage(
              { ...plan.usage, input: plan.usage.input + x.input },
              plan.outputTokens + x.output,
              x.badUsage,
            ),
          )
        : eventMessageDelta(plan.stopReason, plan.usage, plan.outputTokens),
      EVENT_MESSAGE_STOP,
    );
  } else if (fault.kind === 'midstream-error') {
    events.push(midstreamErrorEvent(ex, ex.record.apiKey));
  }

  res.writeHead(200, { ...SSE_HEADERS_BASE, 'request-id': ex.requestId });
  const usage = record.usage;
  if (fault?.kind === 'slow-stream') {
    res.flushHeaders();
    for (let i = 0; i < events.length; i++) {
      await sleep(fault.delayMs);
      if (ex.settled || res.destroyed) return; // the close handler recorded client-aborted
      res.write(events[i] ?? '');
      record.outputTokensSent += tokens[i] ?? 0;
      const b = billed[i];
      if (b) bill(usage, b);
      if (usage) usage.output_tokens = record.outputTokensSent + (x ? extraOutputSent(billed, i) : 0);
    }
  } else {
    record.outputTokensSent = limit;
    if (usage) usage.output_tokens = limit;
    for (const b of billed) if (b && usage) bill(usage, { ...b, output: 0 });
    if (usage && x) usage.output_tokens += x.output;
    if (fault?.kind !== 'reset-midstream') {
      // Fast path: one write for the whole stream.
      ex.settle(200, fault?.kind === 'midstream-error' ? 'midstream-error' : 'complete');
      res.end(events.join(''));
      return;
    }
    await writeThen(res, events.join(''));
  }

  if (fault?.kind === 'reset-midstream') {
    ex.settle(200, 'reset');
    res.destroy();
    return;
  }
  ex.settle(200, 'complete');
  res.end();
}
