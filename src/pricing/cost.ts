// Cost of one usage record, exact: every term is computed in integer pico-USD and the total is rounded
// ONCE to micro-USD. Rates are µUSD per MTok, which is numerically pico-USD per token, so
// tokens × rate is already pico-USD (1 µUSD = 1,000,000 pico-USD).

import { AppError } from '../lib/errors.js';
import type { ModelPrice } from './models.js';
import type { RateCard } from './price-table.js';

/** Token counts of one upstream call, by how each kind is billed. All non-negative integers. */
export interface Usage {
  /** Uncached input (Anthropic's `input_tokens`). */
  inputTokens: number;
  outputTokens: number;
  cacheWrite5mTokens: number;
  cacheWrite1hTokens: number;
  cacheReadTokens: number;
  webSearchRequests: number;
}

/** No tokens and no server-tool uses (a failed attempt, a refused request). */
export const ZERO_USAGE: Readonly<Usage> = {
  inputTokens: 0,
  outputTokens: 0,
  cacheWrite5mTokens: 0,
  cacheWrite1hTokens: 0,
  cacheReadTokens: 0,
  webSearchRequests: 0,
};

/** What the gateway knows before forwarding, to reserve an upper bound of the cost. */
export interface CostBound {
  /** Upper bound of the whole prompt: uncached input + cache writes + cache reads. */
  inputTokensUpperBound: number;
  maxOutputTokens: number;
  webSearchUses: number;
  /** True when the request has (or may get) a `ttl: "1h"` breakpoint. */
  cacheWrite1hPossible: boolean;
  /**
   * Input tokens reserved per server-tool use for its result (the largest per-use allowance among the
   * request's web_search/web_fetch tools). A stream cut after a server-tool use started is charged this
   * per started use. Absent: the bound does not say, and only a web search (whose allowance is the
   * default one) can be bounded from the stream; a started web fetch is charged the worst case.
   */
  serverToolResultTokensPerUse?: number;
}

/**
 * Largest token count read from an upstream usage figure (a thousand times the largest context window):
 * anything above is absurd, and reading it as a count could overflow a cost.
 */
export const MAX_PLAUSIBLE_COUNT = 1_000_000_000;

export interface Savings {
  /** Cost had every prompt token been billed as plain input. */
  uncachedMicro: number;
  actualMicro: number;
  /** uncached − actual; negative when cache writes cost more than reads saved. */
  savedMicro: number;
}

const PICO_PER_MICRO = 1_000_000;
const PICO_PER_MICRO_BIG = 1_000_000n;
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);

type Rounding = 'half-up' | 'up';

function assertCount(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new AppError('internal', `${what} must be a non-negative whole number (got ${value})`);
  }
}

function assertUsage(usage: Usage): void {
  assertCount('usage.inputTokens', usage.inputTokens);
  assertCount('usage.outputTokens', usage.outputTokens);
  assertCount('usage.cacheWrite5mTokens', usage.cacheWrite5mTokens);
  assertCount('usage.cacheWrite1hTokens', usage.cacheWrite1hTokens);
  assertCount('usage.cacheReadTokens', usage.cacheReadTokens);
  assertCount('usage.webSearchRequests', usage.webSearchRequests);
}

/** Prompt length as Anthropic measures it for the long-context threshold. */
export function promptTokens(usage: Usage): number {
  return usage.inputTokens + usage.cacheWrite5mTokens + usage.cacheWrite1hTokens + usage.cacheReadTokens;
}

/** The tier that bills a request of this prompt length: long-context rates apply to the whole request. */
export function ratesFor(price: ModelPrice, prompt: number): RateCard {
  const long = price.longContext;
  return long !== null && prompt > long.aboveTokens ? long.rates : price.rates;
}

function roundPico(pico: number, mode: Rounding): number {
  const rest = pico % PICO_PER_MICRO; // exact for safe integers
  const micro = (pico - rest) / PICO_PER_MICRO;
  if (mode === 'up') return rest > 0 ? micro + 1 : micro;
  return rest * 2 >= PICO_PER_MICRO ? micro + 1 : micro;
}

function roundPicoBig(pico: bigint, mode: Rounding): number {
  const rest = pico % PICO_PER_MICRO_BIG;
  let micro = pico / PICO_PER_MICRO_BIG;
  if (mode === 'up' ? rest > 0n : rest * 2n >= PICO_PER_MICRO_BIG) micro += 1n;
  if (micro > MAX_SAFE_BIG)
    throw new AppError('internal', 'cost does not fit in a safe integer of micro-USD');
  return Number(micro);
}

/**
 * Σ countᵢ × rateᵢ (pico-USD), rounded once. The fast path uses doubles: with non-negative terms, any
 * product or partial sum that lost precision makes the total exceed MAX_SAFE_INTEGER, so one check on
 * the total proves the whole computation exact; otherwise it is redone in BigInt. Up to six fixed
 * terms, not arrays: this runs several times per request.
 */
function sumRounded(
  mode: Rounding,
  c0: number,
  r0: number,
  c1: number,
  r1: number,
  c2: number,
  r2: number,
  c3 = 0,
  r3 = 0,
  c4 = 0,
  r4 = 0,
  c5 = 0,
  r5 = 0,
): number {
  const pico = c0 * r0 + c1 * r1 + c2 * r2 + c3 * r3 + c4 * r4 + c5 * r5;
  if (pico <= Number.MAX_SAFE_INTEGER) return roundPico(pico, mode);
  const big = (c: number, r: number) => BigInt(c) * BigInt(r);
  return roundPicoBig(
    big(c0, r0) + big(c1, r1) + big(c2, r2) + big(c3, r3) + big(c4, r4) + big(c5, r5),
    mode,
  );
}

/** The cost of token counts already checked, at the tier their prompt length selects. */
function costOf(
  price: ModelPrice,
  input: number,
  output: number,
  write5m: number,
  write1h: number,
  read: number,
  webSearches: number,
): number {
  const r = ratesFor(price, input + write5m + write1h + read);
  return sumRounded(
    'half-up',
    input,
    r.input,
    output,
    r.output,
    write5m,
    r.cacheWrite5m,
    write1h,
    r.cacheWrite1h,
    read,
    r.cacheRead,
    webSearches,
    price.webSearchMicroPerRequest * PICO_PER_MICRO,
  );
}

/**
 * Exact cost in micro-USD. Rounding rule: the exact pico-USD total of the record is rounded once, half up
 * (0.5 µUSD → 1 µUSD), so a record is always within 0.5 µUSD of the true price and per-token fractions
 * (e.g. 0.1 µUSD per Haiku 4.5 cache-read token) are never rounded away token by token.
 */
export function costMicro(price: ModelPrice, usage: Usage): number {
  assertUsage(usage);
  return costOf(
    price,
    usage.inputTokens,
    usage.outputTokens,
    usage.cacheWrite5mTokens,
    usage.cacheWrite1hTokens,
    usage.cacheReadTokens,
    usage.webSearchRequests,
  );
}

/** What prompt caching saved on this record, against billing every prompt token as plain input. */
export function savingsMicro(price: ModelPrice, usage: Usage): Savings {
  const actualMicro = costMicro(price, usage);
  const uncachedMicro = costOf(
    price,
    promptTokens(usage),
    usage.outputTokens,
    0,
    0,
    0,
    usage.webSearchRequests,
  );
  return { uncachedMicro, actualMicro, savedMicro: uncachedMicro - actualMicro };
}

/**
 * The usage that costs the most among all usages consistent with `bound`: every prompt token at the
 * dearest input-side kind that could apply (plain input, cache read, 5 min write, or 1 h write when
 * `cacheWrite1hPossible`), `maxOutputTokens` of output,
 * `webSearchUses` searches. A record charged at the worst case carries these token counts, so its tokens
 * and its cost agree; `worstCaseMicro` is its cost rounded up.
 */
export function worstCaseUsage(price: ModelPrice, bound: CostBound): Usage {
  assertCount('bound.inputTokensUpperBound', bound.inputTokensUpperBound);
  assertCount('bound.maxOutputTokens', bound.maxOutputTokens);
  assertCount('bound.webSearchUses', bound.webSearchUses);
  const prompt = bound.inputTokensUpperBound;
  const r = ratesFor(price, prompt);
  // The dearest kind (prices can be overridden in config, so no order among them is assumed).
  let kind = 0;
  let rate = r.input;
  if (r.cacheRead > rate) [kind, rate] = [1, r.cacheRead];
  if (r.cacheWrite5m > rate) [kind, rate] = [2, r.cacheWrite5m];
  if (bound.cacheWrite1hPossible && r.cacheWrite1h > rate) kind = 3;
  return {
    inputTokens: kind === 0 ? prompt : 0,
    outputTokens: bound.maxOutputTokens,
    cacheWrite5mTokens: kind === 2 ? prompt : 0,
    cacheWrite1hTokens: kind === 3 ? prompt : 0,
    cacheReadTokens: kind === 1 ? prompt : 0,
    webSearchRequests: bound.webSearchUses,
  };
}

/**
 * Upper bound of the cost of any usage consistent with `bound`, rounded UP, for budget reservation:
 * - every prompt token at the dearest input-side rate that could apply (plain input, cache read, 5 min
 *   write, and the 1 h write only when `cacheWrite1hPossible`), since caching can turn input into writes;
 * - when the prompt bound exceeds the long-context threshold, the dearer of the two tiers per rate;
 * - maxOutputTokens at the output rate; webSearchUses at the per-search price.
 */
export function worstCaseMicro(price: ModelPrice, bound: CostBound): number {
  assertCount('bound.inputTokensUpperBound', bound.inputTokensUpperBound);
  assertCount('bound.maxOutputTokens', bound.maxOutputTokens);
  assertCount('bound.webSearchUses', bound.webSearchUses);
  const tiers =
    price.longContext !== null && bound.inputTokensUpperBound > price.longContext.aboveTokens
      ? [price.rates, price.longContext.rates]
      : [price.rates];
  let inputRate = 0;
  let outputRate = 0;
  for (const r of tiers) {
    const write = bound.cacheWrite1hPossible ? Math.max(r.cacheWrite5m, r.cacheWrite1h) : r.cacheWrite5m;
    inputRate = Math.max(inputRate, r.input, r.cacheRead, write);
    outputRate = Math.max(outputRate, r.output);
  }
  return sumRounded(
    'up',
    bound.inputTokensUpperBound,
    inputRate,
    bound.maxOutputTokens,
    outputRate,
    bound.webSearchUses,
    price.webSearchMicroPerRequest * PICO_PER_MICRO,
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Returned by readCount for a value that is present but not a plausible count. */
const MALFORMED = -1;

/** A count: 0 when absent (undefined or null), a fraction rounded UP, MALFORMED for anything else. */
function readCount(value: unknown): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !(value >= 0 && value <= MAX_PLAUSIBLE_COUNT)) return MALFORMED;
  return Math.ceil(value);
}

/**
 * Reads an Anthropic `usage` object. `input_tokens` and `output_tokens` must be given; other absent or
 * null fields count 0; a fractional count is rounded UP
 * (never under-count); anything else that is not a plausible count (a string, a negative or non-finite
 * number, more than MAX_PLAUSIBLE_COUNT) makes the whole usage unreadable: null, and the caller charges
 * the reserved worst case. A `usage` that is not an object at all is unreadable too.
 * Cache writes: `cache_creation_input_tokens` is the total, `cache_creation.ephemeral_5m/1h_input_tokens`
 * the split. With a split, the split is used and any part of the total it does not explain is billed
 * as 5 min writes (never counted twice); without one, the whole total is 5 min writes.
 */
export function usageFromAnthropic(u: unknown): Usage | null {
  // input_tokens and output_tokens are always present in a Message's usage: without them it is unread.
  if (!isObject(u) || typeof u.input_tokens !== 'number' || typeof u.output_tokens !== 'number') return null;
  const total = readCount(u.cache_creation_input_tokens);
  const input = readCount(u.input_tokens);
  const output = readCount(u.output_tokens);
  const read = readCount(u.cache_read_input_tokens);
  const split = u.cache_creation;
  const tools = u.server_tool_use;
  const split5m = isObject(split) ? readCount(split.ephemeral_5m_input_tokens) : 0;
  const split1h = isObject(split) ? readCount(split.ephemeral_1h_input_tokens) : 0;
  const searches = isObject(tools) ? readCount(tools.web_search_requests) : 0;
  if (Math.min(total, input, output, read, split5m, split1h, searches) === MALFORMED) return null;
  let write5m = total;
  let write1h = 0;
  if (
    isObject(split) &&
    (isCount(split.ephemeral_5m_input_tokens) || isCount(split.ephemeral_1h_input_tokens))
  ) {
    write5m = split5m + Math.max(0, total - split5m - split1h);
    write1h = split1h;
  }
  return {
    inputTokens: input,
    outputTokens: output,
    cacheWrite5mTokens: write5m,
    cacheWrite1hTokens: write1h,
    cacheReadTokens: read,
    webSearchRequests: searches,
  };
}

/** A split field that was given (a number): with one, the split is used. */
function isCount(value: unknown): boolean {
  return typeof value === 'number';
}
