// The built-in price table, as data. New models appear monthly: add an entry here or a `pricing:` entry in
// tollgate.yml (which wins over this table).
//
// Unit of every rate: micro-USD per million tokens (µUSD/MTok). That is numerically the same as
// pico-USD per token, so `tokens × rate` is an exact integer amount of pico-USD and a price such as
// Haiku 4.5's cache read ($0.10/MTok = 0.1 µUSD per token) needs no fractions.
// Source: docs/anthropic-api.md, "Prices". Cache rates follow 1.25× (5 min write), 2× (1 h write) and
// 0.1× (read) of input, but are written out explicitly so the table reads like the published one.

/** Rates of one pricing tier, each in micro-USD per million tokens (= pico-USD per token). */
export interface RateCard {
  readonly input: number;
  readonly output: number;
  readonly cacheWrite5m: number;
  readonly cacheWrite1h: number;
  readonly cacheRead: number;
}

/** A premium tier applied to the whole request when its prompt is longer than `aboveTokens`. */
export interface LongContextTier {
  /** Applies when input + cache writes + cache reads > aboveTokens (strictly greater). */
  readonly aboveTokens: number;
  readonly rates: RateCard;
}

export interface PriceTableEntry {
  readonly family: string;
  /** Bare model ids (no `-YYYYMMDD` date, no `-latest`); dated forms resolve to these. */
  readonly models: readonly string[];
  readonly rates: RateCard;
  readonly longContext: LongContextTier | null;
  /**
   * Shortest prompt prefix the model caches; a shorter prefix with `cache_control` is simply not cached.
   * Kept as data because Anthropic changes it per model: confirm against the current prompt-caching docs.
   */
  readonly minCacheableTokens: number;
  /**
   * The model's own context window in tokens (without any beta). A prompt never exceeds the window it is
   * served with, so the worst-case bound is capped at it per sampling iteration. Sources: Anthropic's model
   * overview pages (e.g. platform.claude.com/docs/en/models/opus-4-6/overview: "Context window: 1M tokens")
   * and docs/anthropic-api.md; the `context-1m-…` beta raises any model's window to CONTEXT_1M_TOKENS.
   */
  readonly contextWindowTokens: number;
}

/** Web search: $10 per 1,000 requests, the same for every model. */
export const WEB_SEARCH_MICRO_PER_REQUEST = 10_000;

/** The standard context window of Claude models (Opus 4 – 4.5, Sonnet 4 / 4.5, Haiku). */
export const CONTEXT_200K_TOKENS = 200_000;
/** The long context window: native on Opus 4.6, Sonnet 4.6 and later; by the `context-1m-…` beta elsewhere. */
export const CONTEXT_1M_TOKENS = 1_000_000;

/** Prompt length above which Sonnet 4 / 4.5 bill the whole request at long-context rates. */
export const LONG_CONTEXT_THRESHOLD_TOKENS = 200_000;

function card(input: number, cacheWrite5m: number, cacheWrite1h: number, cacheRead: number, output: number) {
  return { input, output, cacheWrite5m, cacheWrite1h, cacheRead } satisfies RateCard;
}

// Sonnet 4 / 4.5 with the 1M-context beta: $6 in / $22.50 out above 200k, cache multipliers on top.
const SONNET_LONG_CONTEXT: LongContextTier = {
  aboveTokens: LONG_CONTEXT_THRESHOLD_TOKENS,
  rates: card(6_000_000, 7_500_000, 12_000_000, 600_000, 22_500_000),
};

// µUSD per MTok:       input       write 5m     write 1h     read       output
const OPUS_45 = card(5_000_000, 6_250_000, 10_000_000, 500_000, 25_000_000);
const OPUS_4 = card(15_000_000, 18_750_000, 30_000_000, 1_500_000, 75_000_000);
const SONNET_4 = card(3_000_000, 3_750_000, 6_000_000, 300_000, 15_000_000);
const HAIKU_45 = card(1_000_000, 1_250_000, 2_000_000, 100_000, 5_000_000);
const HAIKU_35 = card(800_000, 1_000_000, 1_600_000, 80_000, 4_000_000);
const SONNET_5 = card(2_000_000, 2_500_000, 4_000_000, 200_000, 10_000_000);

export const BUILT_IN_PRICES: readonly PriceTableEntry[] = [
  {
    family: 'Opus 4.5',
    models: ['claude-opus-4-5'],
    rates: OPUS_45,
    longContext: null,
    minCacheableTokens: 4_096,
    contextWindowTokens: CONTEXT_200K_TOKENS,
  },
  {
    // Same prices as Opus 4.5; a native 1M-token context window.
    family: 'Opus 4.6 / 4.7 / 4.8',
    models: ['claude-opus-4-6', 'claude-opus-4-7', 'claude-opus-4-8'],
    rates: OPUS_45,
    longContext: null,
    minCacheableTokens: 4_096,
    contextWindowTokens: CONTEXT_1M_TOKENS,
  },
  {
    family: 'Opus 4 / 4.1',
    models: ['claude-opus-4', 'claude-opus-4-0', 'claude-opus-4-1'],
    rates: OPUS_4,
    longContext: null,
    minCacheableTokens: 1_024,
    contextWindowTokens: CONTEXT_200K_TOKENS,
  },
  {
    family: 'Sonnet 4 / 4.5',
    models: ['claude-sonnet-4', 'claude-sonnet-4-0', 'claude-sonnet-4-5'],
    rates: SONNET_4,
    longContext: SONNET_LONG_CONTEXT,
    minCacheableTokens: 1_024,
    contextWindowTokens: CONTEXT_200K_TOKENS,
  },
  {
    // Same base prices as Sonnet 4 / 4.5 but no long-context premium.
    family: 'Sonnet 4.6',
    models: ['claude-sonnet-4-6'],
    rates: SONNET_4,
    longContext: null,
    minCacheableTokens: 1_024,
    contextWindowTokens: CONTEXT_1M_TOKENS,
  },
  {
    family: 'Haiku 4.5',
    models: ['claude-haiku-4-5'],
    rates: HAIKU_45,
    longContext: null,
    minCacheableTokens: 4_096,
    contextWindowTokens: CONTEXT_200K_TOKENS,
  },
  {
    family: 'Haiku 3.5',
    models: ['claude-3-5-haiku'],
    rates: HAIKU_35,
    longContext: null,
    minCacheableTokens: 2_048,
    contextWindowTokens: CONTEXT_200K_TOKENS,
  },
  {
    family: 'Sonnet 5 / 5.5',
    models: ['claude-sonnet-5', 'claude-sonnet-5-5'],
    rates: SONNET_5,
    longContext: null,
    minCacheableTokens: 1_024,
    contextWindowTokens: CONTEXT_1M_TOKENS,
  },
];
