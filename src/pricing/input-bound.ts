// A conservative upper bound of a Messages request's prompt tokens, without a tokenizer, for budget
// reservation ("Budgets never overspend").
//
// Why bytes bound tokens: Claude's tokenizers are byte-level — every token stands for at least one byte of
// the UTF-8 text it encodes — so a text of N UTF-8 bytes is at most N tokens. On top of the bytes we add
// fixed allowances for what the API wraps around the text (role markers, block framing, the tool-use
// system prompt) and for content whose size the body does not show (images, PDFs, server-tool results).
//
// Text and JSON are bounded by their bytes (a proof, given a byte-level tokenizer). Images, PDFs and
// server-tool results are bounded by configured allowances, which are estimates: size them from
// Anthropic's current limits.
//
// Rules:
//  - request: REQUEST_OVERHEAD_TOKENS;
//  - `system`: string → its bytes; blocks → each block (below);
//  - `messages`: MESSAGE_OVERHEAD_TOKENS each, plus string content bytes or each block;
//  - blocks, BLOCK_OVERHEAD_TOKENS each:
//    `text` → text bytes (+ citations JSON); `thinking` → thinking + signature bytes;
//    `redacted_thinking` → data bytes; `tool_result` → id bytes + its content (string or blocks);
//    `image` → imageTokenAllowance whatever the source (pixels, not bytes, decide the cost);
//    `document` → DOCUMENT_OVERHEAD_TOKENS + title/context bytes + by source: `text` → its bytes,
//      `content` → its blocks, `base64` (PDF) / `url` / `file` → documentTokenAllowance,
//      a base64 source over 32 MB → unbounded;
//    `tool_use` and anything else → JSON bytes of the whole block (computed once: nothing inside it is
//      serialised again), plus the allowance of every image or by-reference document nested in it at any
//      depth (e.g. a replayed web_fetch result holding a PDF);
//  - `tools`: JSON bytes of each definition + TOOL_OVERHEAD_TOKENS; Anthropic-defined (typed) tools add
//    TYPED_TOOL_OVERHEAD_TOKENS; any tool at all adds TOOL_USE_PROMPT_TOKENS once;
//    web_search_* / web_fetch_* add serverToolResultAllowance per possible use (max_uses, else
//    defaultMaxUses, else unbounded); a web_fetch with `max_content_tokens` uses that + 1,024 per use;
//    code_execution_* tools and a non-empty `mcp_servers` → unbounded (results of unknown size);
//  - any other top-level field not known to be prompt-free → its JSON bytes +
//    UNKNOWN_FIELD_OVERHEAD_TOKENS (instructions the API adds, e.g. for structured outputs).

import { samplingsBound } from './samplings.js';
import { declaredMaxUses, serverToolKind } from './server-tools.js';

export { type ServerToolUses, webSearchUsesBound } from './server-tools.js';

export interface InputBoundOptions {
  /** Tokens reserved per image block (any source). */
  imageTokenAllowance: number;
  /** Tokens reserved per PDF / URL / file document. */
  documentTokenAllowance: number;
  /** Input tokens reserved per web search / fetch use; default DEFAULT_SERVER_TOOL_RESULT_ALLOWANCE. */
  serverToolResultAllowance?: number;
  /** Uses assumed for a web search/fetch tool without `max_uses`; absent → such a request is unbounded. */
  defaultMaxUses?: number;
  /** The context window the request is served with; absent → no cap (the sum of the rules). */
  contextWindowTokens?: number;
}

export type InputBound =
  | {
      /** Upper bound of the prompt tokens billed over every sampling of the request. */
      tokens: number;
      cacheWrite1hPossible: boolean;
      /** Server-tool uses (web search + web fetch) the bound allows for. */
      serverToolUses: number;
      /** The largest result allowance of one server-tool use (0 without server tools). */
      resultTokensPerUse: number;
    }
  | { unbounded: string };

/** Anthropic resizes images to about 1.15 megapixels, ≈ 1,600 tokens (width × height / 750). */
export const DEFAULT_IMAGE_TOKEN_ALLOWANCE = 1_600;
/**
 * Tokens reserved per by-reference document when no context window is known; the gateway passes the
 * window the request is served with instead (a document by reference can fill it).
 */
export const DEFAULT_DOCUMENT_TOKEN_ALLOWANCE = 200_000;
/** A web search returns ~10 results with excerpts; a fetched page can be larger (see max_content_tokens). */
export const DEFAULT_SERVER_TOOL_RESULT_ALLOWANCE = 25_000;

export const REQUEST_OVERHEAD_TOKENS = 64;
export const MESSAGE_OVERHEAD_TOKENS = 16;
export const BLOCK_OVERHEAD_TOKENS = 8;
export const TOOL_OVERHEAD_TOKENS = 32;
/** Documents are wrapped in source/title/citation markup by the API. */
export const DOCUMENT_OVERHEAD_TOKENS = 1_024;
/** Anthropic documents ~350 tokens of tool-use system prompt; rounded up generously. */
export const TOOL_USE_PROMPT_TOKENS = 1_024;
/** Anthropic-defined tools add their own definitions (text editor ~700, computer use ~735 + ~500). */
export const TYPED_TOOL_OVERHEAD_TOKENS = 2_048;
export const UNKNOWN_FIELD_OVERHEAD_TOKENS = 1_024;
const FETCH_RESULT_OVERHEAD_TOKENS = 1_024;
const MAX_BASE64_DOCUMENT_BYTES = 32 * 1024 * 1024;

/** Top-level fields that carry no prompt text (sampling and control parameters). */
const PROMPT_FREE_FIELDS = new Set([
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

type Json = Record<string, unknown>;

/** Thrown inside the walk only; turned into `{unbounded}` at the top. */
class Unbounded extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

interface Walk {
  readonly opts: InputBoundOptions;
  oneHour: boolean;
  /** Allowances of media found inside opaque values (see `opaque`). */
  media: number;
  /** Per server tool: its uses and the allowance of one result (pairs, flat); null when none. */
  uses: number[] | null;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function utf8(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

function jsonBytes(value: unknown): number {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    throw new Unbounded('the request body is not plain JSON');
  }
  return text === undefined ? 0 : utf8(text);
}

/** Bytes of a field expected to be a string; anything else counts as its JSON. */
function textBytes(value: unknown): number {
  if (value === undefined) return 0;
  return typeof value === 'string' ? utf8(value) : jsonBytes(value);
}

function noteCacheControl(walk: Walk, unit: Json): void {
  const cc = unit.cache_control;
  if (isObject(cc) && cc.ttl === '1h') walk.oneHour = true;
}

function contentTokens(walk: Walk, content: unknown): number {
  if (typeof content === 'string') return utf8(content);
  if (!Array.isArray(content)) return opaqueTokens(walk, content);
  let sum = 0;
  for (const block of content) sum += blockTokens(walk, block);
  return sum;
}

function documentTokens(walk: Walk, block: Json): number {
  const source = block.source;
  const framing = DOCUMENT_OVERHEAD_TOKENS + textBytes(block.title) + textBytes(block.context);
  if (!isObject(source)) return framing + opaqueTokens(walk, source) + walk.opts.documentTokenAllowance;
  switch (source.type) {
    case 'text':
      return framing + textBytes(source.data);
    case 'content':
      return framing + contentTokens(walk, source.content);
    case 'base64':
      if (typeof source.data === 'string' && source.data.length > MAX_BASE64_DOCUMENT_BYTES) {
        throw new Unbounded('a base64 document is larger than 32 MB');
      }
      return framing + walk.opts.documentTokenAllowance;
    case 'url':
    case 'file':
      return framing + walk.opts.documentTokenAllowance;
    default:
      return framing + opaqueTokens(walk, source) + walk.opts.documentTokenAllowance;
  }
}

/** A value bounded by its JSON bytes, plus the allowances of the media nested in it (see `opaque`). */
function opaqueTokens(walk: Walk, value: unknown): number {
  const before = walk.media;
  const bytes = opaque(walk, value, 0);
  const media = walk.media - before;
  walk.media = before;
  return bytes + media;
}

/** Characters JSON.stringify escapes in a well-formed string. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what JSON escapes.
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

/** String.prototype.isWellFormed (Node 20; the ES2023 lib does not declare it). */
type MaybeWellFormed = string & { isWellFormed(): boolean };

/**
 * UTF-8 bytes of JSON.stringify(text). A string JSON writes as is (the common case) is measured directly;
 * one with characters to escape (or lone surrogates) is serialised alone, once: still linear, and faster
 * than counting the escapes in JavaScript.
 */
function jsonStringBytes(text: string): number {
  if (NEEDS_ESCAPE.test(text) || !(text as MaybeWellFormed).isWellFormed()) {
    return utf8(JSON.stringify(text));
  }
  return utf8(text) + 2;
}

/**
 * The UTF-8 bytes of JSON.stringify(value), computed bottom-up in one visit (nothing is serialised, so a
 * block nested in a block is never measured twice). On the way it notes every `ttl: "1h"` breakpoint and
 * adds to `walk.media` the allowances of nested images and documents whose size the bytes do not show
 * (by-reference and PDF documents; the framing of every document).
 */
function opaque(walk: Walk, value: unknown, depth: number): number {
  switch (typeof value) {
    case 'string':
      return jsonStringBytes(value);
    case 'number':
      return Number.isFinite(value) ? String(value).length : 4;
    case 'boolean':
      return value ? 4 : 5;
    case 'object':
      break;
    default:
      return 4; // null, or what JSON.stringify writes as null
  }
  if (value === null) return 4;
  if (depth > 256) throw new Unbounded('the request body nests blocks too deeply');
  if (Array.isArray(value)) {
    let bytes = 2 + Math.max(0, value.length - 1);
    for (const item of value) bytes += opaque(walk, item, depth + 1);
    return bytes;
  }
  const record = value as Json;
  noteCacheControl(walk, record);
  if (record.type === 'image') walk.media += walk.opts.imageTokenAllowance;
  else if (record.type === 'document') walk.media += nestedDocumentTokens(walk, record);
  let bytes = 2;
  let fields = 0;
  for (const key in record) {
    const item = record[key];
    if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
    bytes += jsonStringBytes(key) + 1 + opaque(walk, item, depth + 1);
    fields++;
  }
  return fields > 1 ? bytes + fields - 1 : bytes;
}

/** A document inside an opaque value: framing, plus a window unless its text is in the bytes already. */
function nestedDocumentTokens(walk: Walk, doc: Json): number {
  const source = doc.source;
  const type = isObject(source) ? source.type : undefined;
  if (type === 'text' || type === 'content') return DOCUMENT_OVERHEAD_TOKENS;
  if (isObject(source) && type === 'base64') {
    const data = source.data;
    if (typeof data === 'string' && data.length > MAX_BASE64_DOCUMENT_BYTES) {
      throw new Unbounded('a base64 document is larger than 32 MB');
    }
  }
  return DOCUMENT_OVERHEAD_TOKENS + walk.opts.documentTokenAllowance;
}

function blockTokens(walk: Walk, block: unknown): number {
  if (typeof block === 'string') return utf8(block) + BLOCK_OVERHEAD_TOKENS;
  if (!isObject(block)) return opaqueTokens(walk, block) + BLOCK_OVERHEAD_TOKENS;
  noteCacheControl(walk, block);
  let tokens: number;
  switch (block.type) {
    case 'text':
      tokens = textBytes(block.text) + (block.citations == null ? 0 : opaqueTokens(walk, block.citations));
      break;
    case 'thinking':
      tokens = textBytes(block.thinking) + textBytes(block.signature);
      break;
    case 'redacted_thinking':
      tokens = textBytes(block.data);
      break;
    case 'tool_result':
      tokens =
        textBytes(block.tool_use_id) + (block.content == null ? 0 : contentTokens(walk, block.content));
      break;
    case 'image':
      tokens = walk.opts.imageTokenAllowance;
      break;
    case 'document':
      tokens = documentTokens(walk, block);
      break;
    default:
      // tool_use (input as JSON), search results, replayed server-tool results, future block types.
      tokens = opaqueTokens(walk, block);
  }
  return tokens + BLOCK_OVERHEAD_TOKENS;
}

function messagesTokens(walk: Walk, messages: unknown): number {
  if (!Array.isArray(messages)) return opaqueTokens(walk, messages);
  let sum = 0;
  for (const message of messages) {
    sum += MESSAGE_OVERHEAD_TOKENS;
    sum += isObject(message) ? contentTokens(walk, message.content ?? '') : opaqueTokens(walk, message);
  }
  return sum;
}

function toolTokens(walk: Walk, tool: unknown): number {
  const tokens = jsonBytes(tool) + TOOL_OVERHEAD_TOKENS;
  if (!isObject(tool)) return tokens;
  // A tool is a cache breakpoint by its own `cache_control` only (the API reads no deeper into a tool
  // definition, and walking every schema of every request would cost the hot path for nothing).
  noteCacheControl(walk, tool);
  if (typeof tool.type !== 'string' || tool.type === 'custom') return tokens;
  if (tool.type.startsWith('code_execution_')) {
    throw new Unbounded(`the ${tool.type} tool returns results of unknown size`);
  }
  const kind = serverToolKind(tool);
  if (kind !== null) {
    const uses = declaredMaxUses(tool) ?? walk.opts.defaultMaxUses;
    if (uses === undefined) throw new Unbounded(`the ${kind} tool has no max_uses`);
    const maxContent = tool.max_content_tokens;
    const perUse =
      kind === 'web_fetch' &&
      typeof maxContent === 'number' &&
      Number.isSafeInteger(maxContent) &&
      maxContent > 0
        ? maxContent + FETCH_RESULT_OVERHEAD_TOKENS
        : (walk.opts.serverToolResultAllowance ?? DEFAULT_SERVER_TOOL_RESULT_ALLOWANCE);
    if (uses > 0) {
      walk.uses ??= [];
      walk.uses.push(uses, perUse);
    }
  }
  return tokens + TYPED_TOOL_OVERHEAD_TOKENS;
}

function toolsTokens(walk: Walk, tools: unknown): number {
  if (!Array.isArray(tools)) return opaqueTokens(walk, tools);
  if (tools.length === 0) return 0;
  let sum = TOOL_USE_PROMPT_TOKENS;
  for (const tool of tools) sum += toolTokens(walk, tool);
  return sum;
}

function bodyTokens(walk: Walk, body: Json): number {
  let sum = REQUEST_OVERHEAD_TOKENS;
  noteCacheControl(walk, body);
  for (const key in body) {
    const value = body[key];
    if (value === undefined || PROMPT_FREE_FIELDS.has(key)) continue;
    if (key === 'system') {
      sum += typeof value === 'string' ? utf8(value) + BLOCK_OVERHEAD_TOKENS : contentTokens(walk, value);
    } else if (key === 'messages') sum += messagesTokens(walk, value);
    else if (key === 'tools') sum += toolsTokens(walk, value);
    else if (key === 'mcp_servers') {
      if (Array.isArray(value) && value.length > 0) {
        throw new Unbounded('MCP servers add tool definitions and results of unknown size');
      }
    } else sum += opaqueTokens(walk, value) + UNKNOWN_FIELD_OVERHEAD_TOKENS;
  }
  return sum;
}

/**
 * Upper bound of the prompt tokens (uncached input + cache writes + cache reads) a Messages body can be
 * billed for, or why it cannot be bounded. Also reports whether a 1 h cache write is possible.
 */
export function inputTokenUpperBound(body: unknown, opts: InputBoundOptions): InputBound {
  if (!isObject(body)) return { unbounded: 'the request body is not a JSON object' };
  const walk: Walk = { opts, oneHour: false, media: 0, uses: null };
  try {
    const prompt = bodyTokens(walk, body);
    const window = opts.contextWindowTokens ?? Number.POSITIVE_INFINITY;
    const maxTokens = body.max_tokens;
    const output =
      typeof maxTokens === 'number' && Number.isSafeInteger(maxTokens) && maxTokens > 0 ? maxTokens : 0;
    const uses = walk.uses ?? [];
    const tokens = samplingsBound(prompt, output, uses, window);
    if (!Number.isSafeInteger(tokens)) return { unbounded: 'the token bound is too large' };
    let serverToolUses = 0;
    let resultTokensPerUse = 0;
    for (let i = 0; i < uses.length; i += 2) {
      serverToolUses += uses[i] ?? 0;
      resultTokensPerUse = Math.max(resultTokensPerUse, uses[i + 1] ?? 0);
    }
    return { tokens, cacheWrite1hPossible: walk.oneHour, serverToolUses, resultTokensPerUse };
  } catch (error) {
    if (error instanceof Unbounded) return { unbounded: error.reason };
    if (error instanceof RangeError) return { unbounded: 'the request body nests too deeply' };
    throw error;
  }
}

/** Buffer.byteLength(JSON.stringify(value)) of a parsed JSON value, computed without serialising it. */
export function jsonByteLength(value: unknown): number {
  const walk: Walk = {
    opts: { imageTokenAllowance: 0, documentTokenAllowance: 0 },
    oneHour: false,
    media: 0,
    uses: null,
  };
  return opaque(walk, value, 0);
}
