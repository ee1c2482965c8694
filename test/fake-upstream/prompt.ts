// Deterministic token counting and cache-breakpoint discovery over a Messages request body.
//
// Counting rules (the fake's own tokenizer; tests compute expectations with countInputTokens):
//  - every text counts Math.ceil(utf8Bytes / 4) tokens, each text separately: the system string or each
//    system text block, a message's string content or each `text` block, `tool_result` content (string
//    or its text blocks), `thinking` text, and `tool_use` input as JSON.stringify(input);
//  - each tool definition counts as the text JSON.stringify(tool) with its `cache_control` removed;
//  - `image` and `document` blocks (also inside tool_result) count 1,000 each;
//  - each message adds 3; any other block type counts 0.
//
// Prompt order for caching is tools → system → messages. A unit (one tool, one system block, one message
// block, or a whole string content) carrying `cache_control: {type: "ephemeral", ttl?}` is a breakpoint; the
// prefix up to and including it is hashed with sha256 over a canonical JSON (sorted keys, `cache_control`
// dropped, string content treated as one text block) so that moving or adding breakpoints keeps old hits.
// A top-level `cache_control` (automatic caching) places a breakpoint on the last block of the last message.

import { createHash, type Hash } from 'node:crypto';

export type CacheTtl = '5m' | '1h';

export interface Breakpoint {
  /** Tokens of the prefix up to and including the breakpoint unit. */
  tokens: number;
  ttl: CacheTtl;
  /** sha256 hex of the prefix; only filled by analyzePrompt(body, true). */
  hash: string;
}

export interface PromptAnalysis {
  total: number;
  breakpoints: Breakpoint[];
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function textTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / 4);
}

function withoutCacheControl(block: Json): Json {
  if (!('cache_control' in block)) return block;
  const { cache_control: _ignored, ...rest } = block;
  return rest;
}

function blockTokens(block: unknown): number {
  if (typeof block === 'string') return textTokens(block);
  if (!isObject(block)) return 0;
  switch (block.type) {
    case 'text':
      return typeof block.text === 'string' ? textTokens(block.text) : 0;
    case 'thinking':
      return typeof block.thinking === 'string' ? textTokens(block.thinking) : 0;
    case 'image':
    case 'document':
      return 1000;
    case 'tool_use':
      return textTokens(JSON.stringify(block.input ?? {}));
    case 'tool_result': {
      const content = block.content;
      if (typeof content === 'string') return textTokens(content);
      if (!Array.isArray(content)) return 0;
      let sum = 0;
      for (const inner of content) sum += blockTokens(inner);
      return sum;
    }
    default:
      return 0;
  }
}

function ttlOf(unit: unknown): CacheTtl | null {
  if (!isObject(unit)) return null;
  const cc = unit.cache_control;
  if (!isObject(cc) || cc.type !== 'ephemeral') return null;
  return cc.ttl === '1h' ? '1h' : '5m';
}

/** Sorted-key JSON without any `cache_control`, so equal prompts hash equal whatever their breakpoints. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (!isObject(value)) return JSON.stringify(value) ?? 'null';
  const keys = Object.keys(value)
    .filter((k) => k !== 'cache_control')
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
}

interface Unit {
  /** Hash-stream marker: tool, system, message start, or block. */
  tag: string;
  value: unknown;
  /** Running token total after this unit. */
  after: number;
  ttl: CacheTtl | null;
}

/** Walks the prompt; `hashes` computes the sha256 of each breakpoint prefix (only then is JSON canonicalised). */
export function analyzePrompt(body: Json, hashes = false): PromptAnalysis {
  const units: Unit[] = [];
  let total = 0;
  let anyBreakpoint = false;
  const push = (tag: string, value: unknown, tokens: number, ttl: CacheTtl | null) => {
    total += tokens;
    if (ttl) anyBreakpoint = true;
    units.push({ tag, value, after: total, ttl });
  };

  if (Array.isArray(body.tools)) {
    for (const tool of body.tools) {
      const plain = isObject(tool) ? withoutCacheControl(tool) : tool;
      push('T', plain, textTokens(JSON.stringify(plain) ?? ''), ttlOf(tool));
    }
  }
  const system = body.system;
  if (typeof system === 'string') push('S', { type: 'text', text: system }, textTokens(system), null);
  else if (Array.isArray(system))
    for (const block of system) push('S', block, blockTokens(block), ttlOf(block));

  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const message of messages) {
    if (!isObject(message)) continue;
    push('M', message.role, 3, null);
    const content = message.content;
    if (typeof content === 'string') push('B', { type: 'text', text: content }, textTokens(content), null);
    else if (Array.isArray(content))
      for (const block of content) push('B', block, blockTokens(block), ttlOf(block));
  }

  // Automatic caching: a top-level cache_control marks the last message block.
  const topTtl = ttlOf(body);
  const last = units[units.length - 1];
  if (topTtl && last && last.tag === 'B' && !last.ttl) {
    last.ttl = topTtl;
    anyBreakpoint = true;
  }
  if (!anyBreakpoint) return { total, breakpoints: [] };

  const breakpoints: Breakpoint[] = [];
  const hash: Hash | null = hashes ? createHash('sha256') : null;
  for (const unit of units) {
    hash?.update(`${unit.tag}${canonical(unit.value)}\n`);
    if (unit.ttl) {
      breakpoints.push({ tokens: unit.after, ttl: unit.ttl, hash: hash ? hash.copy().digest('hex') : '' });
    }
  }
  return { total, breakpoints };
}

/** The fake's deterministic input-token count of a Messages (or count_tokens) body; see the rules above. */
export function countInputTokens(body: unknown): number {
  return isObject(body) ? analyzePrompt(body).total : 0;
}

export interface Directives {
  outputTokens?: number;
  webSearches?: number;
  webFetches?: number;
  /** Raw `fault=` value and its sibling parameters, turned into a Fault by the server. */
  fault?: string;
  params: Record<string, string>;
}

const DIRECTIVE = /\[\[fake ([^\]]*)\]\]/g;

/** Text of the last user message (string content or its text blocks), where directives are read. */
function lastUserText(body: Json): string {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const message: unknown = messages[i];
    if (!isObject(message) || message.role !== 'user') continue;
    if (typeof message.content === 'string') return message.content;
    if (!Array.isArray(message.content)) return '';
    let text = '';
    for (const block of message.content) {
      if (isObject(block) && block.type === 'text' && typeof block.text === 'string')
        text += `${block.text}\n`;
    }
    return text;
  }
  return '';
}

/** Parses every `[[fake key=value ...]]` in the last user message; later keys win. Null when there is none. */
export function parseDirectives(body: Json): Directives | null {
  const text = lastUserText(body);
  if (!text.includes('[[fake ')) return null;
  const out: Directives = { params: {} };
  for (const match of text.matchAll(DIRECTIVE)) {
    for (const pair of (match[1] ?? '').trim().split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const key = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const n = Number(value);
      if (key === 'output_tokens' && Number.isInteger(n) && n >= 0) out.outputTokens = n;
      else if (key === 'web_searches' && Number.isInteger(n) && n >= 0) out.webSearches = n;
      else if (key === 'web_fetches' && Number.isInteger(n) && n >= 0) out.webFetches = n;
      else if (key === 'fault') out.fault = value;
      else out.params[key] = value;
    }
  }
  return out;
}
