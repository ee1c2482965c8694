// Usage tap: reads the same SSE chunks the gateway relays, unchanged, and extracts usage on the side.
//
// Hot-path budget: nothing is decoded or copied except the data of message_start, message_delta,
// content_block_start and error (a handful of events per stream), which are JSON-parsed. content_block_delta events, the
// bulk of every stream, are only counted (see delta-counter.ts and estimate.ts); all other events are
// skipped. Memory is bounded: JSON events are kept up to 1 MB each; beyond that the result is estimated.

import type { Usage } from '../../pricing/cost.js';
import { ByteTemplate, ViewCache } from './byte-template.js';
import { CappedBytes } from './capped-bytes.js';
import {
  DeltaPayloadCounter,
  ENVELOPE_HEAD_TEXT,
  EnvelopeMatch,
  matchDeltaIndexAndTail,
} from './delta-counter.js';
import { deltaTokenEstimate } from './estimate.js';
import { eventNames, SseFramer, type SseSink } from './sse-framer.js';
import {
  asObject,
  asString,
  cacheWrites,
  emptyReportedUsage,
  type JsonObject,
  mergeUsage,
  type ReportedUsage,
} from './usage-fields.js';

/** The billed figures of a stream (the same Usage the price book costs) plus what else the stream said. */
export interface StreamUsage extends Usage {
  webFetchRequests: number;
  model: string | null;
  messageId: string | null;
  stopReason: string | null;
}

export interface TapResult {
  usage: StreamUsage;
  /** message_stop seen (the stream completed normally). */
  complete: boolean;
  /** An `error` event arrived mid-stream; its type (e.g. overloaded_error). */
  errorType: string | null;
  /**
   * true when output tokens are an estimate (no final message_delta usage was seen; also after an `error`
   * event or a message_start/message_delta that could not be read). See estimate.ts for the rule.
   */
  estimated: boolean;
  /** number of content_block_delta events relayed */
  deltas: number;
  /** A message_start was read (its input and cache figures are known). */
  started: boolean;
  /** A thinking or redacted_thinking block started: the API bills the full thinking, not the summary. */
  thinking: boolean;
  /** server_tool_use blocks started, by tool: each web search is billed, each result read as input. */
  searchUses: number;
  fetchUses: number;
  /**
   * The stream showed something it cannot bound: a block type or server tool this code does not know, a
   * content_block_start it could not read, or a usage figure that is not a plausible count.
   */
  inDoubt: boolean;
}

export interface UsageTap {
  /** Feeds the next relayed chunk; the tap never keeps a reference to it. */
  push(chunk: Buffer): void;
  /** A snapshot of what the stream reported (or, when cut short, what it is estimated to have cost). */
  result(): TapResult;
  /** Whether message_stop has been seen; cheap enough to ask after every chunk. */
  isComplete(): boolean;
  /**
   * Whether the relay must hold the rest back: message_stop seen (its chunk waits for the record), or an
   * `error` event begun (the upstream wrote it: it is scrubbed before the client sees it).
   */
  holdsBack(): boolean;
}

/** Largest message_start / message_delta / error event kept for parsing. */
export const MAX_JSON_EVENT_BYTES = 1024 * 1024;

/** errorType of an `error` event whose body could not be read. */
export const UNREADABLE_ERROR_TYPE = 'unknown_error';

// Indexes into EVENT_NAMES (-1 for any other name); NO_EVENT until an `event:` line names the event.
const EVENT_NAMES = eventNames([
  'message_start',
  'message_delta',
  'message_stop',
  'content_block_delta',
  'error',
  'content_block_start',
]);
const MESSAGE_START = 0;
const MESSAGE_DELTA = 1;
const MESSAGE_STOP = 2;
const BLOCK_DELTA = 3;
const ERROR = 4;
const BLOCK_START = 5;
const NO_EVENT = -2;
const NEWLINE = Uint8Array.of(0x0a);
const LF = 0x0a;
/** Short searches are a plain loop (Buffer#indexOf costs a native call); long ones use indexOf. */
const SCAN_INLINE = 48;

/** Index of the first `\n` in buf[from, end), or -1. */
function lineEnd(buf: Buffer, from: number, end: number): number {
  const stop = Math.min(end, from + SCAN_INLINE);
  for (let i = from; i < stop; i++) if (buf[i] === LF) return i;
  return stop === end ? -1 : buf.indexOf(LF, stop);
}

/** The first bytes of a content_block_delta event as the API writes it, up to the block index. */
const DELTA_EVENT_HEAD = new ByteTemplate(`event: content_block_delta\ndata: ${ENVELOPE_HEAD_TEXT}`);

/** A text block's start as the API writes it (the only block start of most streams), up to its index… */
const TEXT_START_HEAD = new ByteTemplate(
  'event: content_block_start\ndata: {"type":"content_block_start","index":',
);
/** …and after it: nothing to note, so it is skipped without being kept or parsed. */
const TEXT_START_TAIL = new ByteTemplate(',"content_block":{"type":"text","text":""}}\n\n');

/** Kinds whose data is kept for JSON.parse; NO_EVENT too, in case `data:` comes before `event:`. */
function keepsJson(kind: number): boolean {
  return (
    kind === MESSAGE_START ||
    kind === MESSAGE_DELTA ||
    kind === ERROR ||
    kind === BLOCK_START ||
    kind === NO_EVENT
  );
}

class UsageTapSink implements SseSink {
  // Current event.
  private kind = NO_EVENT;
  private dataLines = 0;
  private readonly json = new CappedBytes(MAX_JSON_EVENT_BYTES);
  private readonly delta: DeltaPayloadCounter;
  private readonly match = new EnvelopeMatch();
  // Whole stream.
  private readonly reported: ReportedUsage = emptyReportedUsage();
  private model: string | null = null;
  private messageId: string | null = null;
  private stopReason: string | null = null;
  private complete = false;
  private errorType: string | null = null;
  private deltas = 0;
  private deltaTokens = 0;
  /** A message_delta reported output_tokens and no content_block_delta followed it. */
  private outputFinal = false;
  /** A JSON event was over the cap or not JSON: its figures are missing. */
  private unreadable = false;
  private started = false;
  private thinking = false;
  private searchUses = 0;
  private fetchUses = 0;
  private unknownBlock = false;
  /** An `event: error` line has been read (its data may still be on its way). */
  private errorStarted = false;

  /** `views`: the tap's one DataView cache, shared with the framer and the delta counter. */
  constructor(private readonly views: ViewCache) {
    this.delta = new DeltaPayloadCounter(views);
  }

  eventType(index: number): void {
    const previous = this.kind;
    this.kind = index;
    if (index === ERROR) this.errorStarted = true;
    if (this.dataLines === 0 || previous !== NO_EVENT) return;
    // Data arrived before the `event:` line (legal, never seen upstream): route what was kept.
    if (index === BLOCK_DELTA) {
      if (this.json.overflowed) this.delta.skip(this.json.total);
      else this.delta.feed(this.json.bytes(), 0, this.json.total);
      this.json.reset();
    } else if (!keepsJson(index)) {
      this.json.reset();
    }
  }

  isComplete(): boolean {
    return this.complete;
  }

  holdsBack(): boolean {
    return this.complete || this.errorStarted;
  }

  /**
   * The hot path: a whole `content_block_delta` event in the API's exact layout (one data line, the
   * canonical envelope) is counted in place — its payload runs from the envelope's end to the line end.
   * Anything else (-1) goes through the general framing, with the same result.
   */
  wholeEvent(buf: Buffer, start: number, end: number): number {
    const view = this.views.get(buf);
    if (!DELTA_EVENT_HEAD.at(view, buf, start, end)) return textBlockStart(view, buf, start, end);
    const match = this.match;
    if (!matchDeltaIndexAndTail(view, buf, start + DELTA_EVENT_HEAD.length, end, match)) return -1;
    const lf = lineEnd(buf, match.payloadStart, end);
    if (lf < 0 || lf + 1 >= end || buf[lf + 1] !== LF) return -1;
    const payload = match.signature ? 0 : Math.max(0, lf - match.payloadStart - match.suffix);
    this.deltas++;
    this.deltaTokens += deltaTokenEstimate(payload);
    this.outputFinal = false;
    return lf + 2;
  }

  dataLine(): void {
    if (this.dataLines++ > 0) this.data(NEWLINE, 0, 1);
  }

  data(buf: Uint8Array, start: number, end: number): void {
    if (this.kind === BLOCK_DELTA) this.delta.feed(buf, start, end);
    else if (keepsJson(this.kind)) this.json.append(buf, start, end);
  }

  dispatch(): void {
    // Per the SSE spec an event without data is not dispatched.
    if (this.dataLines > 0) {
      switch (this.kind) {
        case BLOCK_DELTA:
          this.deltas++;
          this.deltaTokens += deltaTokenEstimate(this.delta.payloadBytes(true));
          this.outputFinal = false;
          break;
        case MESSAGE_STOP:
          this.complete = true;
          break;
        case MESSAGE_START:
        case MESSAGE_DELTA:
        case ERROR:
          this.jsonEvent(this.kind, this.parseJson());
          break;
        case BLOCK_START:
          this.blockStart(asObject(asObject(this.parseJson())?.content_block));
          break;
      }
    }
    this.kind = NO_EVENT;
    this.dataLines = 0;
    this.json.reset();
    this.delta.reset();
  }

  private parseJson(): unknown {
    if (this.json.overflowed) return undefined;
    try {
      return JSON.parse(this.json.text());
    } catch {
      return undefined;
    }
  }

  private jsonEvent(kind: number, parsed: unknown): void {
    const body = asObject(parsed);
    if (kind === ERROR) {
      this.errorType = asString(asObject(body?.error)?.type) ?? UNREADABLE_ERROR_TYPE;
      return;
    }
    if (!body) {
      this.unreadable = true;
      return;
    }
    if (kind === MESSAGE_START) {
      const message = asObject(body.message);
      this.started = message !== null;
      mergeUsage(this.reported, message?.usage);
      this.model = asString(message?.model) ?? this.model;
      this.messageId = asString(message?.id) ?? this.messageId;
      return;
    }
    if (mergeUsage(this.reported, body.usage)) this.outputFinal = true;
    this.stopReason = asString(asObject(body.delta)?.stop_reason) ?? this.stopReason;
  }

  /** Notes what a block costs beyond its deltas; null: the block could not be read. */
  private blockStart(block: JsonObject | null): void {
    switch (block?.type) {
      case 'text':
      case 'tool_use':
      case 'web_search_tool_result':
      case 'web_fetch_tool_result':
        return; // their tokens are the deltas (output) or a result already bounded per started use
      case 'thinking':
      case 'redacted_thinking':
        this.thinking = true;
        return;
      case 'server_tool_use':
        if (block.name === 'web_search') this.searchUses++;
        else if (block.name === 'web_fetch') this.fetchUses++;
        else this.unknownBlock = true; // a server tool whose cost the stream cannot show
        return;
      default:
        this.unknownBlock = true;
    }
  }

  result(): TapResult {
    const reported = this.reported;
    const estimated = !this.outputFinal || this.unreadable || this.errorType !== null;
    let outputTokens = reported.output ?? 0;
    if (estimated) {
      // A delta cut off mid-event was relayed in part: it counts too.
      const partial =
        this.kind === BLOCK_DELTA && this.dataLines > 0
          ? deltaTokenEstimate(this.delta.payloadBytes(false))
          : 0;
      outputTokens = Math.max(outputTokens, this.deltaTokens + partial);
    }
    const { write5m, write1h } = cacheWrites(reported);
    return {
      usage: {
        inputTokens: reported.input ?? 0,
        outputTokens,
        cacheWrite5mTokens: write5m,
        cacheWrite1hTokens: write1h,
        cacheReadTokens: reported.cacheRead ?? 0,
        webSearchRequests: reported.webSearch ?? 0,
        webFetchRequests: reported.webFetch ?? 0,
        model: this.model,
        messageId: this.messageId,
        stopReason: this.stopReason,
      },
      complete: this.complete,
      errorType: this.errorType,
      estimated,
      deltas: this.deltas,
      started: this.started,
      thinking: this.thinking,
      searchUses: this.searchUses,
      fetchUses: this.fetchUses,
      inDoubt: this.unknownBlock || reported.malformed,
    };
  }
}

/** The end of a whole canonical text content_block_start event at `start`, or -1. */
function textBlockStart(view: DataView, buf: Buffer, start: number, end: number): number {
  if (!TEXT_START_HEAD.at(view, buf, start, end)) return -1;
  let i = start + TEXT_START_HEAD.length;
  const digits = i;
  while (i < end && (buf[i] as number) >= 0x30 && (buf[i] as number) <= 0x39) i++;
  if (i === digits || !TEXT_START_TAIL.at(view, buf, i, end)) return -1;
  return i + TEXT_START_TAIL.length;
}

/** Creates a tap for one streamed response. */
export function createUsageTap(): UsageTap {
  const views = new ViewCache();
  const sink = new UsageTapSink(views);
  const framer = new SseFramer(EVENT_NAMES, sink, views);
  return {
    push: (chunk) => framer.push(chunk),
    result: () => sink.result(),
    isComplete: () => sink.isComplete(),
    holdsBack: () => sink.holdsBack(),
  };
}
