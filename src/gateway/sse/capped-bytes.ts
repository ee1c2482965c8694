// A byte accumulator with a hard cap: past it, bytes are counted but no longer kept.

const INITIAL = 4096;
/** Above this a buffer is dropped on reset, so one large event does not pin memory for the whole stream. */
const KEEP_ON_RESET = 64 * 1024;
const EMPTY = Buffer.alloc(0);

export class CappedBytes {
  /** Allocated on first use: most streams keep only a few small events, some none at all. */
  private buf = EMPTY;
  private len = 0;
  /** Bytes appended since the last reset, kept or not. */
  total = 0;

  constructor(private readonly cap: number) {}

  get overflowed(): boolean {
    return this.total > this.cap;
  }

  append(src: Uint8Array, start: number, end: number): void {
    const size = end - start;
    this.total += size;
    if (this.total > this.cap) return;
    const need = this.len + size;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.cap, Math.max(need, INITIAL, this.buf.length * 2)));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    this.buf.set(src.subarray(start, end), this.len);
    this.len = need;
  }

  /** The kept bytes (a view, valid until the next append or reset). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  text(): string {
    return this.buf.toString('utf8', 0, this.len);
  }

  reset(): void {
    this.len = 0;
    this.total = 0;
    if (this.buf.length > KEEP_ON_RESET) this.buf = EMPTY;
  }
}
