// Spend counters of the budget book, packed: a counter is an index into one Float64Array of
// [spent, reserved] pairs and one byte of flags. Ten thousand scopes with three counters each cost
// ~0.5 MB here, where objects with boxed doubles cost several times that (Node 20 has no pointer
// compression; every double field of an object is a separate heap number). Pure: no I/O.

const LOADED = 1;
/** Replaced by a new period's counter; freed once nothing is reserved on it or loading into it. */
const RETIRED = 2;

export class CounterSlab {
  private values = new Float64Array(2 * 1024);
  private flags = new Uint8Array(1024);
  /** Open reservations per counter (a zero-amount reservation still holds its counter). */
  private open = new Int32Array(1024);
  private readonly freeList: number[] = [];
  private next = 0;
  private live = 0;

  /** A zeroed counter, not loaded. */
  alloc(): number {
    let c = this.freeList.pop();
    if (c === undefined) {
      if (this.next === this.flags.length) this.grow();
      c = this.next++;
    }
    this.values[2 * c] = 0;
    this.values[2 * c + 1] = 0;
    this.flags[c] = 0;
    this.open[c] = 0;
    this.live++;
    return c;
  }

  /** Returns a counter to the free list; its index may be handed out again at once. */
  free(c: number): void {
    this.flags[c] = 0;
    this.freeList.push(c);
    this.live--;
  }

  spent(c: number): number {
    return this.values[2 * c] as number;
  }

  reserved(c: number): number {
    return this.values[2 * c + 1] as number;
  }

  addSpent(c: number, amount: number): void {
    this.values[2 * c] = (this.values[2 * c] as number) + amount;
  }

  /** Reserves `amount` on the counter (one more open reservation). */
  hold(c: number, amount: number): void {
    this.values[2 * c + 1] = (this.values[2 * c + 1] as number) + amount;
    this.open[c] = (this.open[c] as number) + 1;
  }

  /** Ends one open reservation of `amount`, adding what was actually spent. */
  settle(c: number, amount: number, actual: number): void {
    this.values[2 * c + 1] = (this.values[2 * c + 1] as number) - amount;
    this.values[2 * c] = (this.values[2 * c] as number) + actual;
    this.open[c] = (this.open[c] as number) - 1;
  }

  /** Whether a reservation is still open on the counter. */
  held(c: number): boolean {
    return (this.open[c] as number) > 0;
  }

  loaded(c: number): boolean {
    return ((this.flags[c] as number) & LOADED) !== 0;
  }

  markLoaded(c: number): void {
    this.flags[c] = (this.flags[c] as number) | LOADED;
  }

  retired(c: number): boolean {
    return ((this.flags[c] as number) & RETIRED) !== 0;
  }

  markRetired(c: number): void {
    this.flags[c] = (this.flags[c] as number) | RETIRED;
  }

  /** Counters allocated and not freed (for tests). */
  size(): number {
    return this.live;
  }

  private grow(): void {
    const values = new Float64Array(this.values.length * 2);
    values.set(this.values);
    this.values = values;
    const flags = new Uint8Array(this.flags.length * 2);
    flags.set(this.flags);
    this.flags = flags;
    const open = new Int32Array(this.open.length * 2);
    open.set(this.open);
    this.open = open;
  }
}
