// Counts the payload bytes of one `content_block_delta` data value without parsing or keeping it.
//
// A tiny streaming scan tracks only JSON strings (quotes and escapes) and spots the first key that names
// a payload: `text` (text_delta), `partial_json` (input_json_delta), `thinking` (thinking_delta) or
// `citation` (citations_delta), or `signature` (signature_delta, not output text: counted as 0).
// Everything from the start of the payload value to the end of the data is then counted without looking
// at it, minus the closing bytes valid JSON must still have (`"}}` after a string, `}}` after the
// citation object). The real API puts the payload last, so this is the raw byte length of the value;
// any other key order only makes the count larger, which is the safe direction for an estimate.

import { ByteTemplate, ViewCache } from './byte-template.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;

const KEY_NONE = 0;
const KEY_STRING_PAYLOAD = 1; // text, partial_json, thinking
const KEY_CITATION = 2;
const KEY_SIGNATURE = 3;
const KEY_DELTA = 4;

const MAX_KEY = 12; // "partial_json", the longest key we look for

export class DeltaPayloadCounter {
  /** Data bytes seen so far in this event. */
  private bytes = 0;
  private scanning = true;
  private inString = false;
  private escape = false;
  private afterString = false;
  private readonly key = new Uint8Array(MAX_KEY);
  private keyLen = 0;
  private pendingKey = KEY_NONE;
  /** Offset of the payload's first byte (-1: not found); `suffix` bytes must follow it in valid JSON. */
  private payloadStart = -1;
  private suffix = 0;
  private signature = false;
  /** Offset of the `delta` object, the fallback for delta types this code does not know. */
  private deltaStart = -1;
  private readonly match = new EnvelopeMatch();

  /** `views`: shared with whoever else reads the same chunks, so each chunk gets one DataView. */
  constructor(private readonly views: ViewCache = new ViewCache()) {}

  reset(): void {
    this.bytes = 0;
    this.scanning = true;
    this.inString = false;
    this.escape = false;
    this.afterString = false;
    this.keyLen = 0;
    this.pendingKey = KEY_NONE;
    this.payloadStart = -1;
    this.suffix = 0;
    this.signature = false;
    this.deltaStart = -1;
  }

  feed(buf: Uint8Array, start: number, end: number): void {
    if (this.scanning && !(this.bytes === 0 && this.canonical(buf, start, end))) this.scan(buf, start, end);
    this.bytes += end - start;
  }

  /**
   * Counts `length` bytes of a fresh event that were not kept (over the cap) without scanning them: with
   * no payload located, the estimate is all of the data.
   */
  skip(length: number): void {
    this.scanning = false;
    this.bytes += length;
  }

  /**
   * Payload bytes of the event. `complete` is false for an event cut off mid-way, where the closing
   * bytes have not arrived and so are not subtracted.
   */
  payloadBytes(complete: boolean): number {
    if (this.payloadStart >= 0) {
      return Math.max(0, this.bytes - this.payloadStart - (complete ? this.suffix : 0));
    }
    if (this.signature) return 0;
    if (this.deltaStart >= 0) return Math.max(0, this.bytes - this.deltaStart - (complete ? 1 : 0));
    return this.bytes; // not the shape we know: count everything
  }

  private scan(buf: Uint8Array, start: number, end: number): void {
    let inString = this.inString;
    let escaped = this.escape;
    let afterString = this.afterString;
    let keyLen = this.keyLen;
    let pendingKey = this.pendingKey;
    const key = this.key;
    for (let i = start; i < end; i++) {
      const b = buf[i] as number;
      if (inString) {
        if (escaped) {
          escaped = false;
          keyLen = MAX_KEY + 1; // an escaped character never belongs to one of our keys
        } else if (b === QUOTE) {
          inString = false;
          afterString = true;
        } else if (b === BACKSLASH) {
          escaped = true;
        } else {
          if (keyLen < MAX_KEY) key[keyLen] = b;
          keyLen++;
        }
        continue;
      }
      if (b <= 0x20) continue; // JSON whitespace (and the `\n` joining data lines)
      if (b === COLON) {
        // A string followed by a colon was a key.
        if (afterString) pendingKey = matchKey(key, keyLen);
        afterString = false;
        continue;
      }
      afterString = false;
      if (pendingKey !== KEY_NONE) {
        const at = this.bytes + (i - start);
        if (pendingKey === KEY_STRING_PAYLOAD && b === QUOTE) {
          this.found(at + 1, 3);
          return;
        }
        if (pendingKey === KEY_CITATION) {
          this.found(at, 2);
          return;
        }
        if (pendingKey === KEY_SIGNATURE) {
          this.signature = true;
          this.scanning = false;
          return;
        }
        if (pendingKey === KEY_DELTA) this.deltaStart = at;
        pendingKey = KEY_NONE;
      }
      if (b === QUOTE) {
        inString = true;
        keyLen = 0;
      }
    }
    this.inString = inString;
    this.escape = escaped;
    this.afterString = afterString;
    this.keyLen = keyLen;
    this.pendingKey = pendingKey;
  }

  /**
   * Fast path for the exact shape the API sends, `{"type":"content_block_delta","index":N,"delta":{"type":
   * "<kind>","<payload key>":…`, checked byte for byte at the start of the data. False (nothing decided)
   * for any other shape or when the envelope is split across chunks; the general scan then runs.
   */
  private canonical(buf: Uint8Array, start: number, end: number): boolean {
    const match = this.match;
    if (!matchDeltaEnvelope(this.views.get(buf), buf, start, end, match)) return false;
    if (match.signature) {
      this.signature = true;
      this.scanning = false;
    } else {
      this.found(match.payloadStart - start, match.suffix);
    }
    return true;
  }

  private found(payloadStart: number, suffix: number): void {
    this.payloadStart = payloadStart;
    this.suffix = suffix;
    this.scanning = false;
  }
}

const KEYS: ReadonlyArray<readonly [Uint8Array, number]> = [
  [Buffer.from('text'), KEY_STRING_PAYLOAD],
  [Buffer.from('partial_json'), KEY_STRING_PAYLOAD],
  [Buffer.from('thinking'), KEY_STRING_PAYLOAD],
  [Buffer.from('citation'), KEY_CITATION],
  [Buffer.from('signature'), KEY_SIGNATURE],
  [Buffer.from('delta'), KEY_DELTA],
];

/** Where matchDeltaEnvelope found the payload (one reusable instance per caller: no allocation). */
export class EnvelopeMatch {
  /** Index of the payload's first byte (for a string payload, just after its opening quote). */
  payloadStart = 0;
  /** Bytes valid JSON must still have after the payload: `"}}` after a string, `}}` after an object. */
  suffix = 0;
  /** A signature_delta: no output text, counted as 0 payload bytes. */
  signature = false;
}

/**
 * The exact shape the API sends, `{"type":"content_block_delta","index":N,"delta":{"type":"<kind>",
 * "<payload key>":…`, matched byte for byte at `start` (before `end`); false for anything else.
 */
function matchDeltaEnvelope(
  view: DataView,
  buf: Uint8Array,
  start: number,
  end: number,
  out: EnvelopeMatch,
): boolean {
  if (!ENVELOPE_HEAD.at(view, buf, start, end)) return false;
  return matchDeltaIndexAndTail(view, buf, start + ENVELOPE_HEAD.length, end, out);
}

/** The rest of matchDeltaEnvelope from just after `"index":` (for callers that matched the head). */
export function matchDeltaIndexAndTail(
  view: DataView,
  buf: Uint8Array,
  start: number,
  end: number,
  out: EnvelopeMatch,
): boolean {
  let i = start;
  const digits = i;
  while (i < end && (buf[i] as number) >= 0x30 && (buf[i] as number) <= 0x39) i++;
  if (i === digits) return false;
  for (let k = 0; k < ENVELOPE_TAILS.length; k++) {
    const tail = ENVELOPE_TAILS[k] as ByteTemplate;
    if (!tail.at(view, buf, i, end)) continue;
    const key = TAIL_KEYS[k];
    out.payloadStart = i + tail.length;
    out.suffix = key === KEY_CITATION ? 2 : 3;
    out.signature = key === KEY_SIGNATURE;
    return true;
  }
  return false;
}

/** The canonical envelope up to the index. */
export const ENVELOPE_HEAD_TEXT = '{"type":"content_block_delta","index":';
const ENVELOPE_HEAD = new ByteTemplate(ENVELOPE_HEAD_TEXT);
/** After the index, by delta type, most frequent first; TAIL_KEYS says what the value after each is. */
const ENVELOPE_TAILS = [
  new ByteTemplate(',"delta":{"type":"text_delta","text":"'),
  new ByteTemplate(',"delta":{"type":"input_json_delta","partial_json":"'),
  new ByteTemplate(',"delta":{"type":"thinking_delta","thinking":"'),
  new ByteTemplate(',"delta":{"type":"signature_delta","signature":"'),
  new ByteTemplate(',"delta":{"type":"citations_delta","citation":'),
];
const TAIL_KEYS = [KEY_STRING_PAYLOAD, KEY_STRING_PAYLOAD, KEY_STRING_PAYLOAD, KEY_SIGNATURE, KEY_CITATION];

function matchKey(key: Uint8Array, keyLen: number): number {
  if (keyLen > MAX_KEY) return KEY_NONE;
  for (const [name, id] of KEYS) {
    if (name.length !== keyLen) continue;
    let k = 0;
    while (k < keyLen && key[k] === name[k]) k++;
    if (k === keyLen) return id;
  }
  return KEY_NONE;
}
