// Server tools run inside one upstream request, so what they cost is not visible in the body: each web
// search is billed per use, and every search or fetch result is fed back to the model as input tokens.
// Tollgate bounds both by the tool's `max_uses`, injecting a configured default where the client set none,
// and a fetched page or PDF by web_fetch's `max_content_tokens`, likewise injected when absent: the body
// forwarded is the body bounded.

import { AppError } from '../lib/errors.js';

export const WEB_SEARCH_TOOL_PREFIX = 'web_search_';
export const WEB_FETCH_TOOL_PREFIX = 'web_fetch_';

export interface ServerToolUses {
  /** Most web searches the request can bill (Σ max_uses of its web_search_* tools). */
  uses: number;
  /** Most web fetches it can make (Σ max_uses of its web_fetch_* tools); fetches cost tokens only. */
  fetchUses: number;
  /**
   * The `tools` array with `max_uses: default` set where it was missing or invalid (and, on web_fetch,
   * `max_content_tokens: default` likewise); null = unchanged.
   */
  patchedTools: unknown[] | null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `max_content_tokens` given to a web_fetch tool without one: a fetched page or PDF is truncated to it, so
 * it is the per-fetch result allowance (the same size as a web search's, DEFAULT_SERVER_TOOL_RESULT_ALLOWANCE).
 */
export const DEFAULT_WEB_FETCH_MAX_CONTENT_TOKENS = 25_000;

export type ServerToolKind = 'web_search' | 'web_fetch';

/** Which metered server tool a tool definition is, by its `type` (e.g. `web_search_20250305`). */
export function serverToolKind(tool: unknown): ServerToolKind | null {
  if (!isObject(tool) || typeof tool.type !== 'string') return null;
  if (tool.type.startsWith(WEB_SEARCH_TOOL_PREFIX)) return 'web_search';
  if (tool.type.startsWith(WEB_FETCH_TOOL_PREFIX)) return 'web_fetch';
  return null;
}

/** The tool's own `max_uses` when it is a whole number ≥ 0; null when absent or unusable. */
export function declaredMaxUses(tool: Record<string, unknown>): number | null {
  const value = tool.max_uses;
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : null;
}

/** web_fetch's own `max_content_tokens` when it is a whole number ≥ 1; null when absent or unusable. */
export function declaredMaxContentTokens(tool: Record<string, unknown>): number | null {
  const value = tool.max_content_tokens;
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 ? value : null;
}

/**
 * Bounds the web searches and fetches a request can make. A web_search_* or web_fetch_* tool without a
 * usable `max_uses` is counted at `defaultMaxUses` and returned patched with it (the input is not
 * mutated), so the bound holds upstream too. The caller forwards `patchedTools` when it is not null.
 */
export function webSearchUsesBound(
  body: unknown,
  defaultMaxUses: number,
  defaultMaxContentTokens: number = DEFAULT_WEB_FETCH_MAX_CONTENT_TOKENS,
): ServerToolUses {
  if (!Number.isSafeInteger(defaultMaxUses) || defaultMaxUses < 0) {
    throw new AppError('internal', 'defaultMaxUses must be a non-negative whole number');
  }
  if (!Number.isSafeInteger(defaultMaxContentTokens) || defaultMaxContentTokens < 1) {
    throw new AppError('internal', 'defaultMaxContentTokens must be a positive whole number');
  }
  const tools = isObject(body) && Array.isArray(body.tools) ? body.tools : [];
  let uses = 0;
  let fetchUses = 0;
  let patchedTools: unknown[] | null = null;
  for (let i = 0; i < tools.length; i++) {
    const tool: unknown = tools[i];
    const kind = serverToolKind(tool);
    if (kind === null || !isObject(tool)) continue;
    let max = declaredMaxUses(tool);
    const noContentCap = kind === 'web_fetch' && declaredMaxContentTokens(tool) === null;
    if (max === null || noContentCap) {
      patchedTools ??= [...tools];
      const patched: Record<string, unknown> = { ...tool };
      if (max === null) patched.max_uses = max = defaultMaxUses;
      if (noContentCap) patched.max_content_tokens = defaultMaxContentTokens;
      patchedTools[i] = patched;
    }
    if (kind === 'web_search') uses += max;
    else fetchUses += max;
  }
  return { uses, fetchUses, patchedTools };
}
