// Model id → price: the built-in table plus config overrides, resolved once into a Map so the per-request
// lookup is one or two Map reads and no allocation for bare ids.

import { AppError } from '../lib/errors.js';
import {
  BUILT_IN_PRICES,
  CONTEXT_1M_TOKENS,
  type LongContextTier,
  type PriceTableEntry,
  type RateCard,
  WEB_SEARCH_MICRO_PER_REQUEST,
} from './price-table.js';

/** A `pricing:` entry of tollgate.yml as the config module produces it; null = derive from input. */
export interface PriceOverride {
  input_micro_per_mtok: number;
  output_micro_per_mtok: number;
  cache_write_5m_micro_per_mtok: number | null;
  cache_write_1h_micro_per_mtok: number | null;
  cache_read_micro_per_mtok: number | null;
  min_cacheable_tokens: number | null;
}

/** Everything needed to price one request of a model. Rates are µUSD per MTok (= pico-USD per token). */
export interface ModelPrice {
  /** The id the price is recorded under: a bare id, or a dated id when config priced that exact id. */
  readonly model: string;
  readonly source: 'built-in' | 'config';
  readonly rates: RateCard;
  readonly longContext: LongContextTier | null;
  readonly minCacheableTokens: number;
  /** The model's own context window (without a `context-1m-…` beta). */
  readonly contextWindowTokens: number;
  readonly webSearchMicroPerRequest: number;
}

export interface PriceBook {
  /** The price of a model id in bare, dated or `-latest` form; null when the model is not priced. */
  lookup(modelId: string): ModelPrice | null;
  /** Bare ids of every priced model, sorted. */
  models(): string[];
}

/** Used for a config-priced model the built-in table does not know: the smallest published minimum. */
const DEFAULT_MIN_CACHEABLE_TOKENS = 1_024;

const DATE_SUFFIX_LENGTH = 9; // "-YYYYMMDD"
const LATEST_SUFFIX = '-latest';

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/** Length of `id` without a trailing `-YYYYMMDD` or `-latest`; id.length when it has neither. */
function bareLength(id: string): number {
  if (id.endsWith(LATEST_SUFFIX)) return id.length - LATEST_SUFFIX.length;
  const at = id.length - DATE_SUFFIX_LENGTH;
  if (at <= 0 || id.charCodeAt(at) !== 45 /* - */) return id.length;
  for (let i = at + 1; i < id.length; i++) if (!isDigit(id.charCodeAt(i))) return id.length;
  return at;
}

/** `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`; `claude-3-5-haiku-latest` → `claude-3-5-haiku`. */
export function bareModelId(id: string): string {
  const length = bareLength(id);
  return length === id.length ? id : id.slice(0, length);
}

/**
 * A derived cache rate: input × num / den. Config prices are whole µUSD per MTok, so the standard
 * multipliers almost always give whole numbers; when they do not, the rate is rounded UP (the difference
 * is below 1e-12 USD per token, and Tollgate never under-charges).
 */
function derived(input: number, num: number, den: number): number {
  return Math.ceil((input * num) / den);
}

function checkRate(model: string, field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new AppError('invalid_config', `pricing.${model}.${field} must be a non-negative whole number`, {
      model,
      field,
    });
  }
  return value;
}

function fromOverride(model: string, o: PriceOverride, builtIn: ModelPrice | undefined): ModelPrice {
  const input = checkRate(model, 'input', o.input_micro_per_mtok);
  const rates: RateCard = {
    input,
    output: checkRate(model, 'output', o.output_micro_per_mtok),
    cacheWrite5m: checkRate(model, 'cache_write_5m', o.cache_write_5m_micro_per_mtok ?? derived(input, 5, 4)),
    cacheWrite1h: checkRate(model, 'cache_write_1h', o.cache_write_1h_micro_per_mtok ?? derived(input, 2, 1)),
    cacheRead: checkRate(model, 'cache_read', o.cache_read_micro_per_mtok ?? derived(input, 1, 10)),
  };
  const minCacheable = o.min_cacheable_tokens ?? builtIn?.minCacheableTokens ?? DEFAULT_MIN_CACHEABLE_TOKENS;
  return {
    model,
    source: 'config',
    rates,
    // An override sets base rates only; a built-in long-context premium stays, so a long prompt is never
    // priced below what Anthropic bills.
    longContext: builtIn?.longContext ?? null,
    minCacheableTokens: checkRate(model, 'min_cacheable_tokens', minCacheable),
    // A model only config knows may have the largest window Anthropic offers: assume it (a larger window
    // only makes the bound more conservative).
    contextWindowTokens: builtIn?.contextWindowTokens ?? CONTEXT_1M_TOKENS,
    webSearchMicroPerRequest: WEB_SEARCH_MICRO_PER_REQUEST,
  };
}

function fromEntry(model: string, entry: PriceTableEntry): ModelPrice {
  return Object.freeze({
    model,
    source: 'built-in',
    rates: entry.rates,
    longContext: entry.longContext,
    minCacheableTokens: entry.minCacheableTokens,
    contextWindowTokens: entry.contextWindowTokens,
    webSearchMicroPerRequest: WEB_SEARCH_MICRO_PER_REQUEST,
  });
}

/**
 * Builds the price book. Overrides win over the built-in table; an override keyed by a bare id also
 * covers its dated forms, one keyed by a dated id applies to that exact id only.
 */
export function createPriceBook(
  overrides: Readonly<Record<string, PriceOverride>>,
  table: readonly PriceTableEntry[] = BUILT_IN_PRICES,
): PriceBook {
  const byId = new Map<string, ModelPrice>();
  for (const entry of table) for (const model of entry.models) byId.set(model, fromEntry(model, entry));
  const builtIn = new Map(byId);
  for (const [model, override] of Object.entries(overrides)) {
    const base = builtIn.get(model) ?? builtIn.get(bareModelId(model));
    byId.set(model, Object.freeze(fromOverride(model, override, base)));
  }
  const bareIds = [...new Set([...byId.keys()].map(bareModelId))].sort();

  return {
    lookup(modelId) {
      const exact = byId.get(modelId);
      if (exact !== undefined) return exact;
      const length = bareLength(modelId);
      return length === modelId.length ? null : (byId.get(modelId.slice(0, length)) ?? null);
    },
    models: () => [...bareIds],
  };
}
