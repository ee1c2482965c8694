// Parsing request bodies with a nesting limit: JSON.parse itself has none, and a deeply nested body
// costs stack and time out of proportion to its size.

/** Deepest nesting of arrays/objects in a JSON text, scanning bytes without decoding. */
export function jsonDepth(bytes: Buffer, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return max;
}

export type ParsedBody = { ok: true; value: Record<string, unknown> } | { ok: false; message: string };

/** Parses a request body that must be a JSON object no deeper than `maxDepth`. */
export function parseJsonObject(bytes: Buffer, maxDepth: number): ParsedBody {
  if (bytes.length === 0) return { ok: false, message: 'the request body is empty; send a JSON object' };
  if (jsonDepth(bytes, maxDepth) > maxDepth)
    return { ok: false, message: `the request body is nested deeper than ${maxDepth} levels` };
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { ok: false, message: 'the request body is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, message: 'the request body must be a JSON object' };
  }
  return { ok: true, value: value as Record<string, unknown> };
}
