// Adversarial billing: the most Anthropic's documented rules let it bill for a Messages request, used to
// prove that Tollgate's reservation is an upper bound (test/gateway/bound-property.test.ts).
//
// Written from ../shared/docs/anthropic-api.md and Anthropic's model pages, with its own constants; it must
// never import Tollgate's pricing code (src/pricing), or the proof would check Tollgate against itself.
//
// Rules (every allowance used to the full):
//  - text: 1 token per UTF-8 byte (Claude's tokenizers are byte-level) of every string in the prompt —
//    system, messages, tools and any field not known to be a sampling parameter — except the structural
//    values of `type`, `role`, `media_type` and everything under `cache_control`;
//  - an image (any source, any depth): IMAGE_TOKENS (~1.15 megapixels / 750);
//  - a document by URL, file id or base64 (PDF), at any depth: fills the context window;
//  - tools present: TOOL_USE_SYSTEM_PROMPT tokens of tool-use system prompt;
//  - the context window: 1M for models that have it natively (Opus 4.6+, Sonnet 4.6+, Sonnet 5) and for
//    Sonnet 4 / 4.5 with a `context-1m-…` beta; 200k otherwise; no sampling reads more than its window;
//  - server tools: every web search / web fetch tool used to its `max_uses` (no `max_uses`: UNCAPPED_USES),
//    one use per sampling, the largest results first; a search returns SEARCH_RESULT_TOKENS, a fetch its
//    `max_content_tokens` + FETCH_FRAMING_TOKENS (no `max_content_tokens`: a whole window); each later
//    sampling re-reads the prompt, the whole output (max_tokens) and the results so far;
//  - output: max_tokens (thinking is billed as output, within max_tokens);
//  - caching: every prompt token written at the dearest TTL the request allows (a `ttl: "1h"` anywhere →
//    1 h writes; any other `cache_control` → 5 min writes; none → plain input);
//  - long context (Sonnet 4 / 4.5 with the beta): prompt over 200,000 tokens → the whole request at
//    $6 / $22.50 with the cache multipliers on top.

type Json = Record<string, unknown>;

export const IMAGE_TOKENS = 1_600;
export const TOOL_USE_SYSTEM_PROMPT = 346;
/** Anthropic documents no maximum for a search result; ~10 results with page excerpts. */
export const SEARCH_RESULT_TOKENS = 25_000;
export const FETCH_FRAMING_TOKENS = 500;
export const UNCAPPED_USES = 100;
const WINDOW_200K = 200_000;
const WINDOW_1M = 1_000_000;
const LONG_CONTEXT_ABOVE = 200_000;

/** $ per MTok: input, output (cache rates follow 1.25× / 2× / 0.1× of input). From anthropic-api.md. */
const PRICES: ReadonlyArray<readonly [prefix: string, input: number, output: number]> = [
  ['claude-opus-4-5', 5, 25],
  ['claude-opus-4-6', 5, 25],
  ['claude-opus-4-7', 5, 25],
  ['claude-opus-4-8', 5, 25],
  ['claude-opus-4-1', 15, 75],
  ['claude-opus-4', 15, 75],
  ['claude-opus-4-0', 15, 75],
  ['claude-sonnet-4-6', 3, 15],
  ['claude-sonnet-4-5', 3, 15],
  ['claude-sonnet-4', 3, 15],
  ['claude-sonnet-4-0', 3, 15],
  ['claude-haiku-4-5', 1, 5],
  ['claude-3-5-haiku', 0.8, 4],
  ['claude-sonnet-5-5', 2, 10],
  ['claude-sonnet-5', 2, 10],
];
const NATIVE_1M = [
  'claude-opus-4-6',
  'claude-opus-4-7',
  'claude-opus-4-8',
  'claude-sonnet-4-6',
  'claude-sonnet-5',
  'claude-sonnet-5-5',
];
const BETA_1M = ['claude-sonnet-4-5', 'claude-sonnet-4', 'claude-sonnet-4-0'];

const NOT_PROMPT = new Set([
  'model',
  'max_tokens',
  'stream',
  'metadata',
  'temperature',
  'top_p',
  'top_k',
  'stop_sequences',
  'service_tier',
  'cache_control',
  'thinking',
  'tool_choice',
  'container',
]);
const STRUCTURAL = new Set(['type', 'role', 'media_type', 'cache_control']);

export interface AdversarialUsage {
  input: number;
  creation5m: number;
  creation1h: number;
  read: number;
  webSearch: number;
  webFetch: number;
  output: number;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5` (exact ids are compared, never prefixes). */
function bare(model: string): string {
  return model.replace(/-(\d{8}|latest)$/, '');
}

function priceOf(model: string): readonly [string, number, number] {
  for (const entry of PRICES) if (bare(model) === entry[0]) return entry;
  throw new Error(`adversarial billing: no price for ${model}`);
}

function longContextBeta(betas: readonly string[]): boolean {
  return betas.some((b) => b.trim().startsWith('context-1m-'));
}

export function contextWindowOf(model: string, betas: readonly string[]): number {
  if (NATIVE_1M.includes(bare(model))) return WINDOW_1M;
  if (longContextBeta(betas) && BETA_1M.includes(bare(model))) return WINDOW_1M;
  return WINDOW_200K;
}

interface Scan {
  tokens: number;
  fillsWindow: boolean;
  ttl: 'none' | '5m' | '1h';
}

function noteCache(scan: Scan, cc: unknown): void {
  if (!isObject(cc)) return;
  if (cc.ttl === '1h') scan.ttl = '1h';
  else if (scan.ttl === 'none') scan.ttl = '5m';
}

function visit(scan: Scan, value: unknown): void {
  if (typeof value === 'string') {
    scan.tokens += Buffer.byteLength(value, 'utf8');
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) visit(scan, item);
    return;
  }
  if (!isObject(value)) return;
  noteCache(scan, value.cache_control);
  if (value.type === 'image') {
    scan.tokens += IMAGE_TOKENS;
    return;
  }
  if (value.type === 'document' && isObject(value.source)) {
    const kind = value.source.type;
    if (kind !== 'text' && kind !== 'content') scan.fillsWindow = true;
  }
  for (const key in value) if (!STRUCTURAL.has(key)) visit(scan, value[key]);
}

/** Every cache_control anywhere in the body, even in fields the prompt scan skips. */
function scanCacheControl(scan: Scan, value: unknown): void {
  if (Array.isArray(value)) {
    for (const item of value) scanCacheControl(scan, item);
    return;
  }
  if (!isObject(value)) return;
  noteCache(scan, value.cache_control);
  for (const key in value) scanCacheControl(scan, value[key]);
}

/** The usage the adversarial upstream reports for `body` served with `betas`. */
export function adversarialUsage(body: Json, model: string, betas: readonly string[]): AdversarialUsage {
  const window = contextWindowOf(model, betas);
  const scan: Scan = { tokens: 0, fillsWindow: false, ttl: 'none' };
  for (const key in body) if (!NOT_PROMPT.has(key)) visit(scan, body[key]);
  scanCacheControl(scan, body);
  const tools = Array.isArray(body.tools) ? body.tools : [];
  if (tools.length > 0) scan.tokens += TOOL_USE_SYSTEM_PROMPT;
  const prompt = scan.fillsWindow ? window : scan.tokens;
  const maxTokens = typeof body.max_tokens === 'number' ? body.max_tokens : 0;

  const results: number[] = [];
  let webSearch = 0;
  let webFetch = 0;
  for (const tool of tools) {
    if (!isObject(tool) || typeof tool.type !== 'string') continue;
    const uses = typeof tool.max_uses === 'number' ? tool.max_uses : UNCAPPED_USES;
    let size: number;
    if (tool.type.startsWith('web_search_')) {
      webSearch += uses;
      size = SEARCH_RESULT_TOKENS;
    } else if (tool.type.startsWith('web_fetch_')) {
      webFetch += uses;
      size =
        typeof tool.max_content_tokens === 'number' ? tool.max_content_tokens + FETCH_FRAMING_TOKENS : window;
    } else continue;
    for (let i = 0; i < uses; i++) results.push(size);
  }
  results.sort((a, b) => b - a);
  let billed = Math.min(window, prompt);
  let read = prompt + maxTokens;
  for (const size of results) {
    read += size;
    billed += Math.min(window, read);
  }
  return {
    input: scan.ttl === 'none' ? billed : 0,
    creation5m: scan.ttl === '5m' ? billed : 0,
    creation1h: scan.ttl === '1h' ? billed : 0,
    read: 0,
    webSearch,
    webFetch,
    output: maxTokens,
  };
}

/** What Anthropic charges for `usage`, in micro-USD rounded up, from this module's own price table. */
export function adversarialCostMicro(
  model: string,
  usage: {
    input_tokens: number;
    output_tokens: number;
    cache_creation_5m: number;
    cache_creation_1h: number;
    cache_read: number;
    web_search_requests: number;
  },
  betas: readonly string[],
): number {
  const [, baseInput, baseOutput] = priceOf(model);
  const prompt = usage.input_tokens + usage.cache_creation_5m + usage.cache_creation_1h + usage.cache_read;
  const long = longContextBeta(betas) && BETA_1M.includes(bare(model)) && prompt > LONG_CONTEXT_ABOVE;
  // Rates in pico-USD per token ($/MTok × 1e6), as BigInt so no product is rounded.
  const pico = (usd: number) => BigInt(Math.round(usd * 1_000_000));
  const input = long ? 6 : baseInput;
  const output = long ? 22.5 : baseOutput;
  const total =
    BigInt(usage.input_tokens) * pico(input) +
    BigInt(usage.cache_creation_5m) * pico(input * 1.25) +
    BigInt(usage.cache_creation_1h) * pico(input * 2) +
    BigInt(usage.cache_read) * pico(input * 0.1) +
    BigInt(usage.output_tokens) * pico(output) +
    BigInt(usage.web_search_requests) * 10_000n * 1_000_000n; // $10 per 1,000 searches
  const micro = total / 1_000_000n + (total % 1_000_000n > 0n ? 1n : 0n);
  return Number(micro);
}
