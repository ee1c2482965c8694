// The usage figures of a stream as reported so far, merged from message_start and message_delta JSON.

/** null: not reported (absent or null upstream). */
export interface ReportedUsage {
  input: number | null;
  output: number | null;
  cacheCreation: number | null;
  cache5m: number | null;
  cache1h: number | null;
  cacheRead: number | null;
  webSearch: number | null;
  webFetch: number | null;
}

export function emptyReportedUsage(): ReportedUsage {
  return {
    input: null,
    output: null,
    cacheCreation: null,
    cache5m: null,
    cache1h: null,
    cacheRead: null,
    webSearch: null,
    webFetch: null,
  };
}

export type JsonObject = Record<string, unknown>;

export function asObject(value: unknown): JsonObject | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : null;
}

export function asString(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** A token count, or null for anything that is not a non-negative finite number. */
function asCount(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}

/**
 * Merges an upstream `usage` object: every field present replaces the earlier value (message_delta usage
 * is cumulative, so the last value is the total), absent fields keep it. Returns whether
 * `output_tokens` was reported.
 */
export function mergeUsage(into: ReportedUsage, usage: unknown): boolean {
  const u = asObject(usage);
  if (!u) return false;
  const cache = asObject(u.cache_creation);
  const tools = asObject(u.server_tool_use);
  const output = asCount(u.output_tokens);
  into.input = asCount(u.input_tokens) ?? into.input;
  into.output = output ?? into.output;
  into.cacheCreation = asCount(u.cache_creation_input_tokens) ?? into.cacheCreation;
  into.cacheRead = asCount(u.cache_read_input_tokens) ?? into.cacheRead;
  if (cache) {
    into.cache5m = asCount(cache.ephemeral_5m_input_tokens) ?? into.cache5m;
    into.cache1h = asCount(cache.ephemeral_1h_input_tokens) ?? into.cache1h;
  }
  if (tools) {
    into.webSearch = asCount(tools.web_search_requests) ?? into.webSearch;
    into.webFetch = asCount(tools.web_fetch_requests) ?? into.webFetch;
  }
  return output !== null;
}

/**
 * Splits cache writes by TTL: the ephemeral split when reported, with any part of the total beyond it
 * counted as 5-minute writes (the default TTL); with only the total reported, all of it is 5-minute writes.
 */
export function cacheWrites(u: ReportedUsage): { write5m: number; write1h: number } {
  if (u.cache5m === null && u.cache1h === null) return { write5m: u.cacheCreation ?? 0, write1h: 0 };
  const write1h = u.cache1h ?? 0;
  const split5m = u.cache5m ?? 0;
  const rest = Math.max(0, (u.cacheCreation ?? 0) - split5m - write1h);
  return { write5m: split5m + rest, write1h };
}
