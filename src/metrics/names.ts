// Every metric name Tollgate exports, in one place: the Prometheus names of GET /metrics, the team
// proposal's OTLP names (claude.*) and the OpenTelemetry GenAI semantic-convention names of the one
// release Tollgate follows.

/** The GenAI semantic conventions release the gen_ai.* names and attributes below are taken from. */
export const GENAI_SEMCONV_VERSION = '1.41.0';
/** The schema URL of that release (sent as the instrumentation scope's schema). */
export const GENAI_SCHEMA_URL = `https://opentelemetry.io/schemas/${GENAI_SEMCONV_VERSION}`;

/** GET /metrics (Prometheus text format). Units are base units: seconds, USD. */
export const PROM = {
  requests: 'tollgate_requests_total',
  refusals: 'tollgate_refusals_total',
  tokens: 'tollgate_tokens_total',
  cost: 'tollgate_cost_usd_total',
  saved: 'tollgate_cache_saved_usd_total',
  cacheExtra: 'tollgate_cache_extra_cost_usd_total',
  upstreamErrors: 'tollgate_upstream_errors_total',
  overhead: 'tollgate_gateway_overhead_seconds',
  upstream: 'tollgate_upstream_duration_seconds',
  budgetUtilisation: 'tollgate_budget_utilization_ratio',
  budgetSpent: 'tollgate_budget_spent_usd',
  budgetLimit: 'tollgate_budget_limit_usd',
  ledgerQueue: 'tollgate_ledger_queue_depth',
  ledgerCommitted: 'tollgate_ledger_records_committed_total',
  ledgerCommit: 'tollgate_ledger_commit_seconds',
  userLabelsOverflow: 'tollgate_metrics_user_labels_overflowed',
} as const;

/** The team proposal's OTLP metrics (product.md §10), with attributes model, user, team. */
export const OTLP = {
  tokensInput: 'claude.tokens.input',
  tokensOutput: 'claude.tokens.output',
  tokensCacheRead: 'claude.tokens.cache_read',
  tokensCacheCreation: 'claude.tokens.cache_creation',
  cost: 'claude.cost.usd',
} as const;

/** OpenTelemetry GenAI semantic conventions (GENAI_SEMCONV_VERSION): metric and attribute names. */
export const GENAI = {
  tokenUsage: 'gen_ai.client.token.usage',
  operationDuration: 'gen_ai.client.operation.duration',
  operationName: 'gen_ai.operation.name',
  providerName: 'gen_ai.provider.name',
  requestModel: 'gen_ai.request.model',
  tokenType: 'gen_ai.token.type',
  errorType: 'error.type',
  /** gen_ai.operation.name of a Messages call. */
  chat: 'chat',
  /** gen_ai.provider.name well-known value. */
  anthropic: 'anthropic',
} as const;

/** Bucket boundaries the conventions advise for gen_ai.client.token.usage ({token}). */
export const GENAI_TOKEN_BUCKETS: readonly number[] = [
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
];
/** Bucket boundaries the conventions advise for gen_ai.client.operation.duration (s). */
export const GENAI_DURATION_BUCKETS: readonly number[] = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/** Tollgate's own work per request (s): well under a millisecond normally, a ledger commit at worst. */
export const OVERHEAD_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];
/** Time spent on the upstream (s): from a fast count_tokens to a long stream. */
export const UPSTREAM_BUCKETS: readonly number[] = [
  0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
];
/** One ledger transaction (s). */
export const COMMIT_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];

/** Token kinds as the `kind` label of tollgate_tokens_total, in the store's column order. */
export const TOKEN_KINDS = ['input', 'output', 'cache_read', 'cache_write_5m', 'cache_write_1h'] as const;

/** The label value of a user, team or model past its cap, or of a request that has none. */
export const OTHER = 'other';
export const NONE = 'none';
