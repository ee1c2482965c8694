// The usage figures of a stream as reported so far, merged from message_start and message_delta JSON.

import { MAX_PLAUSIBLE_COUNT } from '../../pricing/cost.js';

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
  /** A field was present but not a plausible count (a string, negative, not finite, absurdly large). */
  malformed: boolean;
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
    malformed: false,
  };
}

export type JsonObject = Record<string, unknown>;

export function asObject(value: unknown): JsonObject | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : null;
}

export function asString(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** Returned by asCount for a value that is present but not a plausible count. */
const MALFORMED = -1;

/**
 * A token count: null when absent (undefined or null), a fraction rounded UP (never under-count),
 * MALFORMED for anything else (a string, negative, not finite, above MAX_PLAUSIBLE_COUNT).
 */
function asCount(value: unknown): number {
  if (value === undefined || value === null) return NOT_REPORTED;
  if (typeof value !== 'number' || !(value >= 0 && value <= MAX_PLAUSIBLE_COUNT)) return MALFORMED;
  return Math.ceil(value);
}
const NOT_REPORTED = -2;

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
  into.input = merged(into, asCount(u.input_tokens), into.input);
  into.output = merged(into, output, into.output);
  into.cacheCreation = merged(into, asCount(u.cache_creation_input_tokens), into.cacheCreation);
  into.cacheRead = merged(into, asCount(u.cache_read_input_tokens), into.cacheRead);
  if (cache) {
    into.cache5m = merged(into, asCount(cache.ephemeral_5m_input_tokens), into.cache5m);
    into.cache1h = merged(into, asCount(cache.ephemeral_1h_input_tokens), into.cache1h);
  }
  if (tools) {
    into.webSearch = merged(into, asCount(tools.web_search_requests), into.webSearch);
    into.webFetch = merged(into, asCount(tools.web_fetch_requests), into.webFetch);
  }
  return output >= 0;
}

/** The new value of a field: `count` when reported, else the earlier one; a malformed count is noted. */
function merged(into: ReportedUsage, count: number, earlier: number | null): number | null {
  if (count >= 0) return count;
  if (count === MALFORMED) into.malformed = true;
  return earlier;
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
