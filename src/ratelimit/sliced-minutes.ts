// Rolling minutes of every rate-limited key, packed in one Float64Array: a key's minute is an offset
// into it (~320 bytes a key, no object of its own). Pure: no I/O, time is passed in.

export const WINDOW_MS = 60_000;
export const SLICE_MS = 5_000;
/** 12 slices make a minute; one more holds the slice straddling the window's start. */
export const SLICES = WINDOW_MS / SLICE_MS + 1;

/** The lanes of a key's minute. */
export const REQUESTS = 0;
export const INPUT = 1;
export const OUTPUT = 2;
const LANES = 3;

/** A minute's record: the newest slice it holds, then SLICES amounts per lane. */
const RECORD = 1 + LANES * SLICES;
const NONE = -1;

/**
 * A key's rolling minute in 5 s slices: requests (above EXACT_RPM_MAX), input and output tokens. Slot
 * `s % SLICES` of a lane holds slice `s` for the SLICES slices up to the newest one seen; moving on to
 * a newer slice zeroes the slots it takes over. The slice straddling the window's start counts in
 * full: the sum never under-counts the last 60 s, so a limit is never exceeded; a freed amount returns
 * at most 5 s late. A clock that steps back charges the newest slice.
 */
export class SlicedMinutes {
  private data = new Float64Array(RECORD * 256);
  private readonly freeList: number[] = [];
  private next = 0;

  /** A new, empty minute. */
  alloc(): number {
    let m = this.freeList.pop();
    if (m === undefined) {
      if (this.next + RECORD > this.data.length) this.grow();
      m = this.next;
      this.next += RECORD;
    }
    this.data.fill(0, m, m + RECORD);
    this.data[m] = NONE;
    return m;
  }

  /** Returns a minute to the free list; its offset may be handed out again at once. */
  free(m: number): void {
    this.freeList.push(m);
  }

  add(m: number, lane: number, now: number, amount: number): void {
    const slice = Math.floor(now / SLICE_MS);
    const newest = this.data[m] as number;
    let target = newest;
    if (slice > newest) {
      // The slots of the slices since the newest one held older slices (or nothing): start from zero.
      const gap = Math.min(slice - newest, SLICES);
      for (let k = 0; k < gap; k++) {
        const i = (slice - k) % SLICES;
        for (let l = 0; l < LANES; l++) this.data[m + 1 + l * SLICES + i] = 0;
      }
      this.data[m] = slice;
      target = slice;
    }
    const at = m + 1 + lane * SLICES + (target % SLICES);
    this.data[at] = (this.data[at] as number) + amount;
  }

  /** The lane's total over the window ending at `now`. */
  used(m: number, lane: number, now: number): number {
    const newest = this.data[m] as number;
    const base = m + 1 + lane * SLICES;
    let total = 0;
    for (let s = this.oldest(newest, now); s <= newest; s++)
      total += this.data[base + (s % SLICES)] as number;
    return total;
  }

  /** Seconds until `needed` more fits under `limit`, as the oldest slices leave the window. */
  secondsUntil(m: number, lane: number, now: number, limit: number, needed: number): number {
    const slice = Math.floor(now / SLICE_MS);
    const newest = this.data[m] as number;
    const base = m + 1 + lane * SLICES;
    const oldest = this.oldest(newest, now);
    let used = this.used(m, lane, now);
    if (used + needed <= limit) return 0;
    for (let age = SLICES - 1; age >= 0; age--) {
      const s = slice - age;
      if (s >= oldest && s <= newest) used -= this.data[base + (s % SLICES)] as number;
      if (used + needed <= limit) return Math.max(1, Math.ceil(((s + SLICES) * SLICE_MS - now) / 1000));
    }
    return WINDOW_MS / 1000;
  }

  /** Forgets one lane's history (a changed limit starts afresh). */
  clear(m: number, lane: number): void {
    const base = m + 1 + lane * SLICES;
    this.data.fill(0, base, base + SLICES);
  }

  /** Records allocated, free ones included (for tests). */
  capacity(): number {
    return this.next / RECORD;
  }

  /** The oldest slice of the window ending at `now` that the minute holds. */
  private oldest(newest: number, now: number): number {
    return Math.max(0, Math.max(Math.floor(now / SLICE_MS), newest) - SLICES + 1);
  }

  private grow(): void {
    const data = new Float64Array(this.data.length * 2);
    data.set(this.data);
    this.data = data;
  }
}
