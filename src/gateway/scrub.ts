// Removing secrets from what an upstream error sends back (bodies and headers) before a client or a log
// sees it. Not only the exact secret: every run of WINDOW or more bytes of it, raw and in the encodings
// an echo might use (base64 and base64url at each of the three alignments, hex in both cases,
// URL-encoding). A table holds every WINDOW-byte window of every encoded form, keyed by a rolling hash,
// so a body is scanned once, in time linear in its size, whatever the number of secrets.

/** Runs of this many bytes of a secret (in any form) are redacted. */
export const WINDOW = 24;
/** Secrets shorter than this are not scrubbed at all (as before: too short to be told from text). */
const MIN_SECRET = 8;
const MARK = Buffer.from('[redacted]');
const BASE = 0x01000193;
/** BASE^(WINDOW-1) mod 2^32: the weight of the byte leaving the rolling hash. */
const TOP = (() => {
  let p = 1;
  for (let i = 1; i < WINDOW; i++) p = Math.imul(p, BASE);
  return p;
})();

/** Every window of a set of secrets' encoded forms; build once per set of secrets, read by `redact`. */
export interface ScrubTable {
  /** The forms' bytes, one after another (windows point into it). */
  readonly bytes: Buffer;
  readonly hashes: Uint32Array;
  /** Offset of a window in `bytes` plus one; 0 marks an empty slot. */
  readonly offsets: Int32Array;
  readonly mask: number;
  readonly shift: number;
  /** One bit per hash bucket (a window's bucket set when it is held): a small prefilter that stays in cache. */
  readonly bits: Uint32Array;
  readonly bitShift: number;
  /** Windows held (after removing duplicates). */
  readonly count: number;
  /** Forms shorter than a window (short secrets), matched whole. */
  readonly short: readonly Buffer[];
}

export const EMPTY_TABLE: ScrubTable = buildScrubTable([]);

/** The forms an echo of any part of `secret` may take, as byte strings. */
export function encodedForms(secret: string): Buffer[] {
  const raw = Buffer.from(secret, 'utf8');
  const forms = new Set<string>();
  forms.add(raw.toString('latin1'));
  for (let k = 0; k < 3 && k < raw.length; k++) {
    const tail = raw.subarray(k);
    forms.add(tail.toString('base64').replace(/=+$/, ''));
    forms.add(tail.toString('base64url'));
  }
  const hex = raw.toString('hex');
  forms.add(hex);
  forms.add(hex.toUpperCase());
  const url = encodeURIComponent(secret);
  forms.add(url);
  forms.add(url.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()));
  const out: Buffer[] = [];
  for (const f of forms) out.push(Buffer.from(f, 'latin1'));
  return out;
}

function hashAt(buf: Buffer, at: number): number {
  let h = 0;
  for (let j = 0; j < WINDOW; j++) h = (Math.imul(h, BASE) + (buf[at + j] as number)) >>> 0;
  return h;
}

/** The hash of the next window: `out` leaves, `into` enters. */
function roll(h: number, out: number, into: number): number {
  return (Math.imul(h - Math.imul(out, TOP), BASE) + into) >>> 0;
}

function equalAt(a: Buffer, ai: number, b: Buffer, bi: number): boolean {
  for (let j = 0; j < WINDOW; j++) if (a[ai + j] !== b[bi + j]) return false;
  return true;
}

/** Builds the table of every window of every encoded form of `secrets` (those under 8 characters skipped). */
export function buildScrubTable(secrets: Iterable<string>): ScrubTable {
  const forms: Buffer[] = [];
  const short: Buffer[] = [];
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET) continue;
    for (const form of encodedForms(secret)) (form.length >= WINDOW ? forms : short).push(form);
  }
  const bytes = Buffer.concat(forms);
  let windows = 0;
  for (const f of forms) windows += f.length - WINDOW + 1;
  let bits = 4;
  while (1 << bits < windows * 2) bits++;
  const size = 1 << bits;
  const hashes = new Uint32Array(size);
  const offsets = new Int32Array(size);
  const mask = size - 1;
  const shift = 32 - bits;
  // Eight bits per slot's worth of windows: a false positive rate under ~1/16 of table probes.
  const bitShift = Math.max(32 - (bits + 3), 5);
  const filter = new Uint32Array(2 ** (32 - bitShift) / 32);
  let base = 0;
  let count = 0;
  for (const f of forms) {
    let h = f.length >= WINDOW ? hashAt(bytes, base) : 0;
    for (let i = 0; i + WINDOW <= f.length; i++) {
      const at = base + i;
      if (i > 0) h = roll(h, bytes[at - 1] as number, bytes[at + WINDOW - 1] as number);
      let slot = Math.imul(h, 0x9e3779b1) >>> shift;
      let duplicate = false;
      while (offsets[slot] !== 0) {
        if (hashes[slot] === h && equalAt(bytes, (offsets[slot] as number) - 1, bytes, at)) {
          duplicate = true;
          break;
        }
        slot = (slot + 1) & mask;
      }
      if (duplicate) continue;
      hashes[slot] = h;
      offsets[slot] = at + 1;
      const bit = Math.imul(h, 0x85ebca6b) >>> bitShift;
      filter[bit >>> 5] = (filter[bit >>> 5] as number) | (1 << (bit & 31));
      count++;
    }
    base += f.length;
  }
  return { bytes, hashes, offsets, mask, shift, bits: filter, bitShift, count, short };
}

function inTable(t: ScrubTable, h: number, body: Buffer, at: number): boolean {
  const bit = Math.imul(h, 0x85ebca6b) >>> t.bitShift;
  if (((t.bits[bit >>> 5] as number) & (1 << (bit & 31))) === 0) return false;
  let slot = Math.imul(h, 0x9e3779b1) >>> t.shift;
  for (;;) {
    const off = t.offsets[slot] as number;
    if (off === 0) return false;
    if (t.hashes[slot] === h && equalAt(t.bytes, off - 1, body, at)) return true;
    slot = (slot + 1) & t.mask;
  }
}

/**
 * Replaces every run of `body` covered by windows of the tables' secrets with `[redacted]`. Linear in
 * the body's length (one rolling hash per byte, one table probe per table). Returns `body` itself when
 * nothing matched.
 */
export function redact(body: Buffer, tables: readonly ScrubTable[]): Buffer {
  // Ranges to redact, as [start, end) pairs; windows arrive in order, so overlaps merge as they come.
  const ranges: number[] = [];
  const add = (start: number, end: number) => {
    const n = ranges.length;
    if (n > 0 && start <= (ranges[n - 1] as number)) {
      if (end > (ranges[n - 1] as number)) ranges[n - 1] = end;
    } else ranges.push(start, end);
  };
  let some = false;
  for (const t of tables) if (t.count > 0 || t.short.length > 0) some = true;
  if (!some) return body;
  if (body.length >= WINDOW) {
    let h = hashAt(body, 0);
    const last = body.length - WINDOW;
    for (let i = 0; ; i++) {
      for (let k = 0; k < tables.length; k++) {
        if (inTable(tables[k] as ScrubTable, h, body, i)) {
          add(i, i + WINDOW);
          break;
        }
      }
      if (i === last) break;
      h = roll(h, body[i] as number, body[i + WINDOW] as number);
    }
  }
  let shortRanges: number[] | null = null;
  for (const t of tables) {
    for (const form of t.short) {
      for (let at = body.indexOf(form); at !== -1; at = body.indexOf(form, at + 1)) {
        shortRanges ??= [];
        shortRanges.push(at, at + form.length);
      }
    }
  }
  if (shortRanges) {
    // Rare (only secrets shorter than a window): merge the two sorted-by-start lists.
    const pairs: [number, number][] = [];
    for (let i = 0; i < ranges.length; i += 2) pairs.push([ranges[i] as number, ranges[i + 1] as number]);
    for (let i = 0; i < shortRanges.length; i += 2)
      pairs.push([shortRanges[i] as number, shortRanges[i + 1] as number]);
    pairs.sort((a, b) => a[0] - b[0]);
    ranges.length = 0;
    for (const [s, e] of pairs) add(s, e);
  }
  if (ranges.length === 0) return body;
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    parts.push(body.subarray(from, ranges[i] as number), MARK);
    from = ranges[i + 1] as number;
  }
  parts.push(body.subarray(from));
  return Buffer.concat(parts);
}

/** `redact` for a header value. */
export function redactText(text: string, tables: readonly ScrubTable[]): string {
  const bytes = Buffer.from(text, 'utf8');
  const out = redact(bytes, tables);
  return out === bytes ? text : out.toString('utf8');
}
