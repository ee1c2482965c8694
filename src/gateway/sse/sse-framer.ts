// Byte-level SSE framing (WHATWG "event stream interpretation") that never decodes or copies the stream.
//
// Chunks may split the stream anywhere: inside a field name, inside a multi-byte UTF-8 character, between
// `\r` and `\n`. The framer keeps only a few bytes of state (a partial field name and a partial event
// name, both capped); data values are handed to the sink as byte ranges of the caller's chunk, so an
// event of any size costs no memory here. Line ends are `\n`, `\r\n` or a lone `\r`, as the spec says.

import { ByteTemplate, ViewCache } from './byte-template.js';

/** Receives the structure of the stream; data values arrive as byte ranges valid only during the call. */
export interface SseSink {
  /** An `event:` line; `index` into the framer's names, or -1 for any other name. */
  eventType(index: number): void;
  /** A `data:` line starts (joining several data lines with `\n` is the sink's business). */
  dataLine(): void;
  /** Bytes [start, end) of the current data line's value (one line may arrive in several calls). */
  data(buf: Buffer, start: number, end: number): void;
  /** A blank line: the event is complete. */
  dispatch(): void;
  /**
   * Optional fast path. At the start of an event whose first line begins with `e`, the sink may take the
   * whole event in place from `buf[start, end)`: it returns the index just after the event's blank line,
   * or -1 to leave it to the general framing. Offered only when the rest of the chunk has no `\r`, so
   * every line there ends with a lone `\n`.
   */
  wholeEvent?(buf: Buffer, start: number, end: number): number;
}

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
const BOM = [0xef, 0xbb, 0xbf] as const;

const FIELD_OTHER = 0;
const FIELD_DATA = 1;
const FIELD_EVENT = 2;

const MODE_FIELD = 0; // reading a field name at the start of a line
const MODE_VALUE_START = 1; // just after `field:`; one leading space is dropped
const MODE_VALUE = 2; // inside the value, up to the end of the line

/** Event names longer than this cannot be one of ours: they are not kept. */
const MAX_NAME = 64;

export class SseFramer {
  private mode = MODE_FIELD;
  private field = FIELD_OTHER;
  private readonly fieldBuf = new Uint8Array(8);
  private fieldLen = 0;
  private readonly nameBuf = new Uint8Array(MAX_NAME);
  private readonly nameView = new DataView(this.nameBuf.buffer);
  private nameLen = 0;
  /** No line of the current event has been read yet (the sink's fast path may take it whole). */
  private eventStart = true;
  /** The rest of the current chunk holds no `\r`. */
  private crFree = false;
  /** The previous chunk ended with `\r`: a leading `\n` belongs to that line end. */
  private skipLF = false;
  /** Bytes of a leading UTF-8 BOM matched so far; 3 once past the start of the stream. */
  private bom = 0;

  /**
   * `names`: the event names the sink wants told apart (see eventNames, built once per program, not
   * per stream); others are reported as -1.
   */
  constructor(
    private readonly names: readonly ByteTemplate[],
    private readonly sink: SseSink,
    /** Shared with the sink when it reads the same chunks, so each chunk gets one DataView. */
    private readonly views: ViewCache = new ViewCache(),
  ) {}

  push(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    if (this.bom < 3) i = this.skipBom(chunk);
    if (this.skipLF && i < n) {
      this.skipLF = false;
      if (chunk[i] === LF) i++;
    }
    this.crFree = this.sink.wholeEvent !== undefined && chunk.indexOf(CR, i) === -1;
    // Positions of the next `\n` / `\r` at or after i (-1: none left in this chunk), found lazily so
    // every byte is searched at most once per chunk even when lines are short.
    let lf = -2;
    let cr = -2;
    while (i < n) {
      if (this.mode === MODE_FIELD) {
        i = this.readField(chunk, i, n);
        continue;
      }
      if (this.mode === MODE_VALUE_START) {
        if (chunk[i] === SPACE) i++;
        this.mode = MODE_VALUE;
        continue;
      }
      if (lf !== -1 && lf < i) lf = chunk.indexOf(LF, i);
      if (cr !== -1 && cr < i) cr = chunk.indexOf(CR, i);
      const eol = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      this.value(chunk, i, eol < 0 ? n : eol, eol >= 0);
      if (eol < 0) return;
      i = this.lineEnd(chunk, eol, n);
    }
  }

  private skipBom(chunk: Buffer): number {
    let i = 0;
    while (this.bom < 3 && i < chunk.length) {
      if (chunk[i] !== BOM[this.bom]) {
        // Not a BOM: the bytes matched so far start an (unknown) field name.
        this.fieldLen = this.bom;
        this.bom = 3;
        return i;
      }
      this.bom++;
      i++;
    }
    return i;
  }

  /** Reads a field name from i; returns where to continue. */
  private readField(chunk: Buffer, i: number, n: number): number {
    if (this.fieldLen === 0) {
      const b = chunk[i];
      if (b === LF || b === CR) {
        this.eventStart = true;
        this.sink.dispatch();
        return this.lineEnd(chunk, i, n);
      }
      if (b === 0x65 && this.eventStart && this.crFree) {
        const next = (this.sink as Required<SseSink>).wholeEvent(chunk, i, n);
        if (next >= 0) return next;
      }
      this.eventStart = false;
      // Fast paths for the two fields that matter, when the name is whole in this chunk.
      if (b === 0x64 && isAt(chunk, i, n, DATA_COLON)) return this.startValue(FIELD_DATA, i + 5);
      if (b === 0x65 && isAt(chunk, i, n, EVENT_COLON)) return this.eventLine(chunk, i + 6, n);
    }
    for (; i < n; i++) {
      const b = chunk[i] as number;
      if (b === COLON) return this.startValue(this.resolveField(), i + 1);
      if (b === LF || b === CR) {
        // A line with a field name and no colon: the value is empty.
        this.startValue(this.resolveField(), i);
        this.value(chunk, i, i, true);
        return this.lineEnd(chunk, i, n);
      }
      if (this.fieldLen < this.fieldBuf.length) this.fieldBuf[this.fieldLen] = b;
      this.fieldLen++;
    }
    return n;
  }

  /**
   * An `event:` line from its value at i. A known name followed by the line end within this chunk is
   * matched in place (the hot path); anything else goes through the general value handling.
   */
  private eventLine(chunk: Buffer, i: number, n: number): number {
    const start = chunk[i] === SPACE ? i + 1 : i;
    const view = this.views.get(chunk);
    const names = this.names;
    for (let k = 0; k < names.length; k++) {
      const name = names[k] as ByteTemplate;
      const eol = start + name.length;
      if (eol >= n || !name.at(view, chunk, start, n)) continue;
      const b = chunk[eol];
      if (b !== LF && b !== CR) continue;
      this.sink.eventType(k);
      return this.lineEnd(chunk, eol, n);
    }
    return this.startValue(FIELD_EVENT, i);
  }

  private resolveField(): number {
    if (this.fieldLen === 4 && isAt(this.fieldBuf, 0, 4, DATA_COLON, 4)) return FIELD_DATA;
    if (this.fieldLen === 5 && isAt(this.fieldBuf, 0, 5, EVENT_COLON, 5)) return FIELD_EVENT;
    return FIELD_OTHER;
  }

  /** Index of the event name buf[start, end) among the names, or -1. */
  private matchName(buf: Uint8Array, start: number, end: number): number {
    const len = end - start;
    if (len > MAX_NAME) return -1;
    const view = buf === this.nameBuf ? this.nameView : this.views.get(buf);
    const names = this.names;
    for (let k = 0; k < names.length; k++) {
      const name = names[k] as ByteTemplate;
      if (name.length === len && name.at(view, buf, start, end)) return k;
    }
    return -1;
  }

  private startValue(field: number, next: number): number {
    this.field = field;
    this.mode = MODE_VALUE_START;
    this.nameLen = 0;
    if (field === FIELD_DATA) this.sink.dataLine();
    return next;
  }

  /** Value bytes [start, end); `lineDone` when end is the end of the line. */
  private value(chunk: Buffer, start: number, end: number, lineDone: boolean): void {
    if (this.field === FIELD_DATA) {
      if (end > start) this.sink.data(chunk, start, end);
    } else if (this.field === FIELD_EVENT) {
      if (lineDone && this.nameLen === 0) {
        this.sink.eventType(this.matchName(chunk, start, end));
        return;
      }
      const room = MAX_NAME - this.nameLen;
      const take = Math.min(room, end - start);
      if (take > 0) this.nameBuf.set(chunk.subarray(start, start + take), this.nameLen);
      // Past MAX_NAME the length keeps growing so that no prefix of a long name matches.
      this.nameLen += end - start;
      if (lineDone) this.sink.eventType(this.matchName(this.nameBuf, 0, this.nameLen));
    }
  }

  /** Consumes the line terminator at eol; returns the index after it. */
  private lineEnd(chunk: Buffer, eol: number, n: number): number {
    this.mode = MODE_FIELD;
    this.fieldLen = 0;
    if (chunk[eol] === CR) {
      if (eol + 1 >= n) {
        this.skipLF = true;
        return n;
      }
      if (chunk[eol + 1] === LF) return eol + 2;
    }
    return eol + 1;
  }
}

/** Templates for SseFramer's `names`. */
export function eventNames(names: readonly string[]): ByteTemplate[] {
  return names.map((name) => new ByteTemplate(name));
}

const DATA_COLON = Uint8Array.from(Buffer.from('data:'));
const EVENT_COLON = Uint8Array.from(Buffer.from('event:'));

/** buf[at, at + len) before `end` equals the first len bytes of `what`. */
function isAt(buf: Uint8Array, at: number, end: number, what: Uint8Array, len = what.length): boolean {
  if (end - at < len) return false;
  for (let k = 0; k < len; k++) if (buf[at + k] !== what[k]) return false;
  return true;
}
