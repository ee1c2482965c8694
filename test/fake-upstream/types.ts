// Public types of the fake Anthropic upstream shared by tests and benchmarks.

export interface FakeUpstreamOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: '127.0.0.1' | string;
  /** Inference keys accepted in addition to the `sk-ant-api03-test` prefix. */
  validKeys?: string[];
  /** Admin keys accepted in addition to the `sk-ant-admin01-test` prefix. */
  adminKeys?: string[];
  /** Accept any key starting with `sk-ant-api03-test` / `sk-ant-admin01-test` (default true). */
  acceptTestKeys?: boolean;
  /** Delay before the first byte of every `/v1/*` answer. */
  latencyMs?: number;
  /** Tokens per `content_block_delta` (default 1). */
  streamChunkTokens?: number;
  /** Output tokens when no `[[fake output_tokens=N]]` directive is given (default 20). */
  defaultOutputTokens?: number;
  /** Clock for prompt-cache expiry (default Date.now); lets tests expire entries without waiting. */
  now?: () => number;
  /**
   * Bill every Messages request the most Anthropic's documented rules allow (adversarial.ts): every
   * allowance used to the full, output at max_tokens, caches written at the dearest TTL. Default false.
   */
  adversarialBilling?: boolean;
  /** Serve HTTPS with this certificate (PEM) instead of plain HTTP; `url` then starts with https://. */
  tls?: { key: string; cert: string };
}

/** A failure to inject; the notes at the top of index.ts give the semantics of each kind. */
export type Fault =
  | {
      kind: 'status';
      status: number;
      /** Seconds for `retry-after`; defaults to 1 on 429 (unless errorCode is set); null omits the header. */
      retryAfterS?: number | null;
      /** Replaces the generated Anthropic error body entirely. */
      body?: unknown;
      message?: string;
      /** Sets `error.details.error_code`, e.g. `enforced_spend_limit_reached`. */
      errorCode?: string;
      headers?: Record<string, string>;
    }
  | { kind: 'reset' }
  | { kind: 'hang' }
  | { kind: 'midstream-error'; afterTokens: number }
  | { kind: 'slow-stream'; delayMs: number }
  | { kind: 'reset-midstream'; afterTokens: number };

export interface FaultMatch {
  apiKey?: string;
  /** Exact path without the query string, e.g. `/v1/messages`. */
  path?: string;
  /** Any path starting with this, e.g. `/v1/organizations/` for every Admin API call. */
  pathPrefix?: string;
}

export type ServedOutcome = 'complete' | 'error' | 'midstream-error' | 'client-aborted' | 'reset' | 'hang';

/** What the fake reported (or would have billed up to the point of failure). */
export interface ServedUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_5m: number;
  cache_creation_1h: number;
  cache_read: number;
  web_search_requests: number;
  web_fetch_requests: number;
}

export interface ServedRecord {
  requestId: string;
  /** Epoch milliseconds when the request arrived. */
  at: number;
  method: string;
  path: string;
  query: Record<string, string>;
  /** The key presented (x-api-key wins over Bearer when both differ); null when none. */
  apiKey: string | null;
  headers: {
    anthropicVersion: string | null;
    anthropicBeta: string[];
    authorization?: 'x-api-key' | 'bearer' | 'both';
  };
  /** Every request header, names lowercased, repeated headers joined with ", ". */
  rawHeaders: Record<string, string>;
  model?: string;
  stream: boolean;
  /** HTTP status sent; 0 when no status line was ever sent (reset, hang). */
  status: number;
  outcome: ServedOutcome;
  usage?: ServedUsage;
  outputTokensSent: number;
}

export interface FakeUpstream {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /**
   * Every request answered (or failed), in the order each one reached its outcome: a stream is appended
   * when it ends, a hang when it starts hanging. The array is cleared in place by reset().
   */
  served: ServedRecord[];
  /**
   * One-shot fault, FIFO, for the next request matching `match` (any `/v1/*` request when omitted);
   * enqueue N times for the next N, e.g. `{ pathPrefix: '/v1/organizations/' }` for Admin API calls.
   */
  enqueueFault(fault: Fault, match?: FaultMatch): void;
  /** Applies to every `/v1/*` request until cleared with null. */
  setDefaultFault(fault: Fault | null): void;
  /** The key answers 401 from now on (until reset()). */
  revokeKey(apiKey: string): void;
  /** The Admin API's state: seeded API keys, workspaces, page size and the "no access" switch. */
  admin: FakeAdminHandle;
  /** The usage and cost reports (reports.ts): page size in buckets, and how far they lag. */
  reports: FakeReportsHandle;
  /** The spend-limits beta's state: its limits, the count of changing writes, its own "no access" switch. */
  spendLimits: FakeSpendLimitHandle;
  /** Seeds the Claude Code analytics report (`usage_report/claude_code`), one record per actor and day. */
  claudeCode: { add(record: FakeClaudeCodeRecord): void; setNoAccess(on: boolean): void };
  /** Clears served records, queued/default faults, prompt-cache state, revocations and admin state. */
  reset(): void;
  /** Resolves once `served` holds at least `count` records (rejects after timeoutMs, default 2000). */
  waitForServed(count: number, timeoutMs?: number): Promise<ServedRecord[]>;
  /** Closes the server and destroys all sockets, including hanging ones. */
  close(): Promise<void>;
}

export interface FakeWorkspace {
  id: string;
  type: 'workspace';
  name: string;
  created_at: string;
  archived_at: string | null;
  display_color: string;
}

export interface FakeApiKey {
  id: string;
  type: 'api_key';
  name: string;
  workspace_id: string | null;
  created_at: string;
  created_by: { id: string; type: string };
  expires_at: string | null;
  partial_key_hint: string;
  status: 'active' | 'inactive' | 'archived';
}

export interface FakeApiKeyInput {
  /** The key's secret: its hint is computed from it, and Messages refuse it once it is not active. */
  secret: string;
  id?: string;
  name?: string;
  workspaceId?: string | null;
  status?: FakeApiKey['status'];
}

export interface FakeAdminHandle {
  /** Registers an Anthropic API key the Admin API lists (`apikey_…`, Anthropic's `partial_key_hint`). */
  addApiKey(input: FakeApiKeyInput): FakeApiKey;
  /** Caps every Admin API page at `size` items whatever `limit` asks (to exercise paging). */
  setMaxPageSize(size: number): void;
  /** While on, every Admin API call answers 403 permission_error (the organisation has no access). */
  setNoAccess(on: boolean): void;
  workspaces(): FakeWorkspace[];
  apiKeys(): FakeApiKey[];
}

export interface FakeReportsHandle {
  /** Caps every report page at `buckets` buckets whatever `limit` asks (to exercise paging). */
  setMaxBuckets(buckets: number): void;
  /** Requests newer than `now - ms` are left out of the reports (the real ones lag). */
  setLagMs(ms: number): void;
}

/** A spend limit of the Admin API's spend-limits beta (spend-limits.ts). */
export interface FakeSpendLimit {
  type: 'spend_limit';
  id: string;
  /** Integer cents as a decimal string; null = an explicit "no limit". */
  amount: string | null;
  currency: 'USD';
  period: 'daily' | 'weekly' | 'monthly';
  scope: { type: 'organization' } | { type: 'workspace'; workspace_id: string };
  is_enabled: boolean;
  created_at: string;
}

export interface FakeSpendLimitHandle {
  /** While on, spend-limit calls answer 403 permission_error (no early access); other calls work. */
  setNoAccess(on: boolean): void;
  /** Caps every spend-limit list page at `size` items. */
  setMaxPageSize(size: number): void;
  limits(): FakeSpendLimit[];
  /** Upserts that changed something (a POST matching the stored limit is not counted). */
  writes(): number;
}

/** One actor's day in the Claude Code analytics report (claude-code.ts). */
export interface FakeClaudeCodeRecord {
  /** The UTC day, `YYYY-MM-DDT00:00:00Z`. */
  date: string;
  actor: { type: 'user_actor'; email_address: string } | { type: 'api_actor'; api_key_name: string };
  organization_id: string;
  customer_type: 'api' | 'subscription';
  terminal_type: string;
  core_metrics: {
    num_sessions: number;
    lines_of_code: { added: number; removed: number };
    commits_by_claude_code: number;
    pull_requests_by_claude_code: number;
  };
  tool_actions: Record<string, { accepted: number; rejected: number }>;
  model_breakdown: Array<{
    model: string;
    tokens: { input: number; output: number; cache_read: number; cache_creation: number };
    estimated_cost: { currency: 'USD'; amount: number };
  }>;
}
