// Parsing request bodies with a nesting limit and no duplicate keys. JSON.parse itself has no nesting
// limit (a deeply nested body costs stack and time out of proportion to its size), and it keeps the
// last of duplicate keys while the raw bytes go upstream: a body saying `"model"` twice would be
// checked on one reading and served on another. One byte scan finds both.

/** Up to this many keys an object's keys are compared in place, by hash and bytes; above it (or once
 * a key has an escape) they are decoded and kept in a Set. */
const SMALL_OBJECT = 12;
const OBJECT = 1;
const ARRAY = 2;

// The scan's state, one slot per nesting level, reused by every call (the scan is synchronous) and
// grown to the deepest limit asked for. Keys of small objects are kept as (hash, start, end) in the
// key stack, so a body of small objects allocates nothing; a level's keys start at `base[level]`.
let kinds = new Uint8Array(66);
/** Per level: an array's element index, or an object's key count. */
let counts = new Int32Array(66);
let base = new Int32Array(66);
/** Per level: where the current member's key is (for a duplicate's path). */
let lastStart = new Int32Array(66);
let lastEnd = new Int32Array(66);
let keyHash = new Int32Array(66 * SMALL_OBJECT);
let keyStart = new Int32Array(66 * SMALL_OBJECT);
let keyEnd = new Int32Array(66 * SMALL_OBJECT);
const keySets: Array<Set<string> | null> = [];

function stacksFor(limit: number): void {
  if (kinds.length > limit + 1) return;
  const levels = limit + 2;
  kinds = new Uint8Array(levels);
  counts = new Int32Array(levels);
  base = new Int32Array(levels);
  lastStart = new Int32Array(levels);
  lastEnd = new Int32Array(levels);
  keyHash = new Int32Array(levels * SMALL_OBJECT);
  keyStart = new Int32Array(levels * SMALL_OBJECT);
  keyEnd = new Int32Array(levels * SMALL_OBJECT);
}

/** A JSON string's value from its bytes between the quotes (unescaped when it has a backslash). */
function keyText(bytes: Buffer, start: number, end: number): string {
  let escaped = false;
  for (let k = start; k < end && !escaped; k++) escaped = bytes[k] === 0x5c;
  if (!escaped) return bytes.toString('utf8', start, end);
  try {
    return JSON.parse(bytes.toString('utf8', start - 1, end + 1)) as string;
  } catch {
    // Not a valid string: JSON.parse of the whole body refuses it anyway.
    return bytes.toString('utf8', start, end);
  }
}

function sameBytes(bytes: Buffer, a: number, aEnd: number, b: number, bEnd: number): boolean {
  if (aEnd - a !== bEnd - b) return false;
  for (; a < aEnd; a++, b++) if (bytes[a] !== bytes[b]) return false;
  return true;
}

/** Where a duplicate was found: `messages[0].content[2].type` (built only on that rare path). */
function pathAt(bytes: Buffer, depth: number, key: string): string {
  let path = '';
  for (let d = 1; d < depth; d++) {
    if (kinds[d] === ARRAY) path += `[${counts[d]}]`;
    else {
      const name = keyText(bytes, lastStart[d] ?? 0, lastEnd[d] ?? 0);
      path += path === '' ? name : `.${name}`;
    }
  }
  return path === '' ? key : `${path}.${key}`;
}

export type JsonScan =
  | { readonly kind: 'ok' }
  | { readonly kind: 'too-deep' }
  | { readonly kind: 'duplicate'; readonly path: string };

const SCAN_OK: JsonScan = { kind: 'ok' };
const SCAN_TOO_DEEP: JsonScan = { kind: 'too-deep' };

/**
 * Scans a JSON text once for nesting beyond `limit` and for an object with the same key twice (keys
 * compared after unescaping, as JSON.parse reads them: `"mo\u0064el"` is `"model"`). Linear in the
 * bytes: strings are skipped with a native search for their closing quote; keys of small objects are
 * compared by hash and bytes without decoding; larger objects, and objects with an escaped key, keep
 * their decoded keys in a Set. A malformed text may scan as anything: JSON.parse is the judge of syntax.
 */
export function scanJson(bytes: Buffer, limit: number): JsonScan {
  stacksFor(limit);
  let depth = 0;
  let top = 0;
  let expectKey = false;
  const n = bytes.length;
  try {
    for (let i = 0; i < n; i++) {
      const c = bytes[i];
      if (c === 0x22 /* " */) {
        const start = i + 1;
        // The closing quote: the next one not escaped (preceded by an even run of backslashes).
        let end = bytes.indexOf(0x22, start);
        while (end !== -1) {
          let slashes = 0;
          while (end - 1 - slashes >= start && bytes[end - 1 - slashes] === 0x5c) slashes++;
          if ((slashes & 1) === 0) break;
          end = bytes.indexOf(0x22, end + 1);
        }
        if (end === -1) return SCAN_OK; // unterminated: JSON.parse refuses it
        i = end;
        if (!expectKey) continue;
        expectKey = false;
        lastStart[depth] = start;
        lastEnd[depth] = end;
        let set = keySets[depth] ?? null;
        let hash = 0x811c9dc5;
        let escaped = false;
        if (set === null) {
          for (let k = start; k < end; k++) {
            const b = bytes[k] as number;
            if (b === 0x5c) escaped = true;
            hash = Math.imul(hash ^ b, 0x01000193);
          }
        }
        const from = base[depth] as number;
        const count = (counts[depth] as number) + 1;
        counts[depth] = count;
        if (set === null && !escaped && count <= SMALL_OBJECT) {
          for (let k = from; k < top; k++) {
            if (
              keyHash[k] === hash &&
              sameBytes(bytes, keyStart[k] as number, keyEnd[k] as number, start, end)
            )
              return { kind: 'duplicate', path: pathAt(bytes, depth, keyText(bytes, start, end)) };
          }
          keyHash[top] = hash;
          keyStart[top] = start;
          keyEnd[top] = end;
          top++;
          continue;
        }
        if (set === null) {
          // Decode this object's keys so far (escapes and large objects are compared as strings).
          set = new Set<string>();
          for (let k = from; k < top; k++)
            set.add(keyText(bytes, keyStart[k] as number, keyEnd[k] as number));
          keySets[depth] = set;
          top = from;
        }
        const key = keyText(bytes, start, end);
        if (set.has(key)) return { kind: 'duplicate', path: pathAt(bytes, depth, key) };
        set.add(key);
      } else if (c === 0x7b /* { */) {
        depth++;
        if (depth > limit) return SCAN_TOO_DEEP;
        kinds[depth] = OBJECT;
        counts[depth] = 0;
        base[depth] = top;
        keySets[depth] = null;
        expectKey = true;
      } else if (c === 0x5b /* [ */) {
        depth++;
        if (depth > limit) return SCAN_TOO_DEEP;
        kinds[depth] = ARRAY;
        counts[depth] = 0;
        expectKey = false;
      } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
        if (depth > 0) {
          if (kinds[depth] === OBJECT) {
            top = base[depth] as number;
            keySets[depth] = null;
          }
          depth--;
        }
        expectKey = false;
      } else if (c === 0x2c /* , */) {
        if (kinds[depth] === OBJECT) expectKey = true;
        else counts[depth] = (counts[depth] as number) + 1;
      }
    }
    return SCAN_OK;
  } finally {
    // Drop the key Sets still open (a refused or malformed body leaves levels open).
    for (let d = 1; d <= depth && d < keySets.length; d++) keySets[d] = null;
  }
}

export type ParsedBody = { ok: true; value: Record<string, unknown> } | { ok: false; message: string };

/** Parses a request body that must be a JSON object no deeper than `maxDepth`, without duplicate keys. */
export function parseJsonObject(bytes: Buffer, maxDepth: number): ParsedBody {
  const scan = scanBody(bytes, maxDepth);
  return 'message' in scan ? scan : parseScanned(bytes, scan);
}

/** The first half of parseJsonObject: the byte scan (nesting and duplicates), or why the body fails it. */
export function scanBody(bytes: Buffer, maxDepth: number): JsonScan | { ok: false; message: string } {
  if (bytes.length === 0) return { ok: false, message: 'the request body is empty; send a JSON object' };
  const scan = scanJson(bytes, maxDepth);
  if (scan.kind === 'too-deep')
    return { ok: false, message: `the request body is nested deeper than ${maxDepth} levels` };
  return scan;
}

/** The second half: JSON.parse of a scanned body (invalid JSON is reported before a duplicate key). */
export function parseScanned(bytes: Buffer, scan: JsonScan): ParsedBody {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { ok: false, message: 'the request body is not valid JSON' };
  }
  if (scan.kind === 'duplicate') {
    return {
      ok: false,
      message: `the request body has the key ${JSON.stringify(scan.path)} twice; send each key once`,
    };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, message: 'the request body must be a JSON object' };
  }
  return { ok: true, value: value as Record<string, unknown> };
}
