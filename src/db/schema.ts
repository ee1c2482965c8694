// Table types of the Tollgate database. The same schema runs on SQLite and PostgreSQL:
// timestamps are integer epoch milliseconds, money is integer micro-USD, booleans are 0/1,
// lists are JSON text, secrets are binary (BLOB / BYTEA) envelope ciphertexts.
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

export type Millis = number;
export type Json = string;

export interface MetaTable {
  key: string;
  value: string;
}

/** Bring-your-own-key policy: `preferred` (own key first, then team and org) or `required` (own key only). */
export type ByokPolicy = 'preferred' | 'required';

export interface TeamTable {
  id: string;
  name: string;
  created_at: Millis;
  /** null = preferred (the default). */
  byok: ByokPolicy | null;
  /** The Anthropic workspace (`wrkspc_…`) whose spend limit mirrors the team's monthly budget; null = none. */
  anthropic_workspace_id: string | null;
}

export type UserRole = 'admin' | 'member' | 'service';

export interface UserTable {
  id: string;
  name: string;
  email: string | null;
  role: UserRole;
  team_id: string | null;
  created_at: Millis;
  removed_at: Millis | null;
  /** null = the team's policy (or preferred). */
  byok: ByokPolicy | null;
  preferred_model: string | null;
  /** argon2id (PHC string); null = no password set (invite pending, OIDC only, or a service). */
  password_hash: string | null;
  /** `issuer|sub` of the person's OIDC identity, bound at their first single sign-on. */
  oidc_subject: string | null;
  /** Set when de-provisioned (e.g. refused by the identity provider): no sign-in until re-enabled. */
  disabled_at: Millis | null;
  /** Id of the key profile that bounds the keys this person may issue to themselves; null = defaults. */
  key_ceiling: string | null;
}

export type Provider = 'anthropic' | 'anthropic-admin' | 'github' | 'linear' | 'generic';
export type OwnerType = 'org' | 'team' | 'user';
export type Environment = 'dev' | 'staging' | 'prod';
export type CredentialStatus = 'active' | 'inactive' | 'invalid';

export interface CredentialTable {
  id: string;
  name: string;
  provider: Provider;
  owner_type: OwnerType;
  owner_id: string | null;
  environment: Environment | null;
  status: CredentialStatus;
  preferred: number;
  hint: string;
  ciphertext: Buffer;
  wrapped_key: Buffer;
  key_version: number;
  created_at: Millis;
  updated_at: Millis;
  last_used_at: Millis | null;
  rotated_at: Millis | null;
  removed_at: Millis | null;
  /** When a rotated-out secret stops being used (set on its own row by `rotate --grace`). */
  retire_at: Millis | null;
  /** The credential this retiring row was rotated out of. */
  retired_from: string | null;
}

export type KeyStatus = 'active' | 'revoked';

export interface GatewayKeyTable {
  id: string;
  user_id: string;
  name: string | null;
  hash: string;
  hint: string;
  status: KeyStatus;
  models: Json | null;
  tools: Json | null;
  max_tokens: number | null;
  max_cost_per_request_micro: number | null;
  rpm: number | null;
  input_tpm: number | null;
  output_tpm: number | null;
  concurrency: number | null;
  environment: Environment | null;
  credential_id: string | null;
  scopes: Json;
  expires_at: Millis | null;
  created_at: Millis;
  created_by: string;
  revoked_at: Millis | null;
  rotated_to: string | null;
  last_used_at: Millis | null;
  /** The first key of this key's rotation chain (its own id for a key not rotated from another): the
   * key scope of budgets and spend belongs to the lineage. */
  lineage_id: string;
}

export type BudgetScope = 'key' | 'user' | 'team' | 'org';
export type BudgetPeriod = 'day' | 'month' | 'total';

export type KeyRetirementState = 'pending' | 'done' | 'no_match';

/** An old Anthropic key to disable through the Admin API when a rotation's grace ends (`rotate --retire`). */
export interface KeyRetirementTable {
  id: string;
  credential_id: string;
  credential_name: string;
  old_hint: string;
  created_at: Millis;
  due_at: Millis;
  state: KeyRetirementState;
  attempts: number;
  next_attempt_at: Millis;
  anthropic_key_id: string | null;
  last_error: string | null;
  done_at: Millis | null;
}

export interface BudgetTable {
  scope_type: BudgetScope;
  scope_id: string;
  period: BudgetPeriod;
  limit_micro: number;
  updated_at: Millis;
}

export interface AuditLogTable {
  seq: number;
  id: string;
  at: Millis;
  actor: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  details: Json;
  prev_hash: string;
  hash: string;
}

export interface AuditAnchorTable {
  id: number;
  seq: number;
  hash: string;
  mac: string;
}

/** A person's data key (sealed under the master key); a purge empties the blobs and sets shredded_at. */
export interface PersonKeyTable {
  subject_id: string;
  ciphertext: Buffer;
  wrapped_key: Buffer;
  key_version: number;
  created_at: Millis;
  shredded_at: Millis | null;
}

export interface ChangeLogTable {
  seq: Generated<number>;
  at: Millis;
  kind: string;
  target_id: string;
}

export type Endpoint = 'messages' | 'count_tokens' | 'models';

export interface UsageRecordTable {
  id: string;
  at: Millis;
  endpoint: Endpoint;
  key_id: string;
  user_id: string;
  team_id: string | null;
  /** The service account that acted for user_id (act-for-users), else null. */
  service_user_id: string | null;
  credential_id: string | null;
  model: string | null;
  input_tokens: number;
  output_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  cache_read_tokens: number;
  web_search_requests: number;
  cost_micro: number;
  saved_micro: number;
  latency_ms: number;
  status: number;
  outcome: string;
  upstream_request_id: string | null;
  stream: number;
  partial: number;
  estimated: number;
  attempts: number;
}

/**
 * Messages usage summed per 15-minute bucket (`bucket` = its start, epoch ms) and rollup key. Key
 * columns hold '' for "none" (no team, model or credential): they form the primary key.
 */
export interface UsageRollupTable {
  bucket: Millis;
  key_id: string;
  model: string;
  credential_id: string;
  user_id: string;
  team_id: string;
  /** 2xx answers. */
  requests: number;
  /** Other statuses. */
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  cache_read_tokens: number;
  web_search_requests: number;
  cost_micro: number;
  saved_micro: number;
  estimated: number;
}

/** Usage rollups summed per day of the reporting timezone (named in meta `usage_daily_timezone`). */
export interface UsageDailyTable extends Omit<UsageRollupTable, 'bucket'> {
  /** The day's first instant in that zone. */
  day: Millis;
}

export interface SpendTable {
  scope_type: BudgetScope;
  scope_id: string;
  period: BudgetPeriod;
  period_start: Millis;
  spent_micro: number;
}

/** A one-time code a coder exchanges for a gateway key (`claude-code setup`); only its HMAC is kept. */
export interface EnrollmentCodeTable {
  id: string;
  user_id: string;
  code_hash: string;
  /** The model written into the coder's Claude Code settings. */
  model: string;
  created_at: Millis;
  expires_at: Millis;
  used_at: Millis | null;
  created_by: string;
}

/** The lease of the one server serving this database (a single row, id 1; holder null = free). */
export interface ServeLeaseTable {
  id: number;
  /** The serving process's instance id (random per start). */
  holder: string | null;
  host: string | null;
  pid: number | null;
  /** The holder's pid namespace and start time (Linux: `pid:[N]/TICKS`), against pid reuse. */
  pid_start: string | null;
  started_at: Millis | null;
  heartbeat_at: Millis | null;
}

/** A serving process (see install/serve-lease.ts). */
export interface ServeInstanceTable {
  instance_id: string;
  host: string;
  pid: number;
  pid_start: string | null;
  /** 1: serves beside others through Redis; 0: alone. */
  shared: number;
  started_at: Millis;
  /** Last heartbeat by the database's clock (PostgreSQL), and by the instance's own clock. */
  heartbeat_at: Millis;
  own_heartbeat_at: Millis;
  /** The version of the master key the instance was started with (null: not recorded). */
  master_key_version: number | null;
}

/** A personal admin API token (`tga_…`) of an admin user; only its keyed hash is kept. */
export interface AdminTokenTable {
  id: string;
  user_id: string;
  name: string | null;
  hash: string;
  hint: string;
  created_at: Millis;
  created_by: string;
  last_used_at: Millis | null;
  revoked_at: Millis | null;
}

/** A named policy template for gateway keys (`key issue --profile NAME`); `policy` is JSON. */
export interface KeyProfileTable {
  id: string;
  name: string;
  description: string | null;
  policy: Json;
  created_at: Millis;
  updated_at: Millis;
}

export type SessionMethod = 'admin-token' | 'password' | 'invite' | 'oidc';

export interface SessionTable {
  id: string;
  hash: string;
  user_id: string | null;
  method: SessionMethod;
  created_at: Millis;
  last_seen_at: Millis;
  /** Absolute expiry; the idle expiry is last_seen_at + the configured idle time. */
  expires_at: Millis;
  ended_at: Millis | null;
  ended_reason: string | null;
  ip: string | null;
  user_agent: string | null;
  oidc_refresh: string | null;
  oidc_checked_at: Millis | null;
}

export interface InviteTable {
  id: string;
  hash: string;
  user_id: string;
  created_at: Millis;
  created_by: string;
  expires_at: Millis;
  used_at: Millis | null;
}

export type AlertKind = 'budget' | 'credential_invalid' | 'key_age' | 'credential_age';
export type AlertDelivery = 'pending' | 'delivered' | 'failed' | 'off';

/** One alert per condition (unique), with its webhook delivery state. */
export interface AlertTable {
  id: string;
  condition: string;
  kind: AlertKind;
  target_type: string;
  target_id: string;
  raised_at: Millis;
  message: string;
  payload: Json;
  delivery: AlertDelivery;
  attempts: number;
  next_attempt_at: Millis | null;
  lease_until: Millis | null;
  delivered_at: Millis | null;
  last_error: string | null;
}

/** One day × API key × workspace ('' = none) × model of Anthropic's usage report, as imported. */
export interface AnthropicUsageReportTable {
  day: string;
  api_key_id: string;
  workspace_id: string;
  model: string;
  uncached_input_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  cache_read_tokens: number;
  output_tokens: number;
  web_search_requests: number;
}

/** One day × workspace ('' = none) × description line of Anthropic's cost report, as imported. */
export interface AnthropicCostReportTable {
  day: string;
  workspace_id: string;
  description: string;
  model: string | null;
  token_type: string | null;
  amount_cents: string;
  amount_micro: number;
  currency: string;
}

/** An Anthropic API key as `anthropic sync` last listed it (no secret: the hint only). */
export interface AnthropicApiKeyTable {
  id: string;
  name: string;
  partial_key_hint: string | null;
  workspace_id: string | null;
  status: string;
  listed_at: Millis;
}

/** One UTC day × actor of Anthropic's Claude Code analytics, as imported. */
export interface AnthropicClaudeCodeTable {
  day: string;
  actor: string;
  actor_kind: 'user' | 'api_key';
  sessions: number;
  lines_added: number;
  lines_removed: number;
  commits: number;
  pull_requests: number;
  tool_accepted: number;
  tool_rejected: number;
  estimated_micro: number;
}

export interface Database {
  anthropic_api_keys: AnthropicApiKeyTable;
  anthropic_claude_code: AnthropicClaudeCodeTable;
  anthropic_usage_report: AnthropicUsageReportTable;
  anthropic_cost_report: AnthropicCostReportTable;
  alerts: AlertTable;
  usage_records: UsageRecordTable;
  usage_rollups: UsageRollupTable;
  usage_daily: UsageDailyTable;
  spend: SpendTable;
  meta: MetaTable;
  teams: TeamTable;
  users: UserTable;
  credentials: CredentialTable;
  gateway_keys: GatewayKeyTable;
  budgets: BudgetTable;
  audit_log: AuditLogTable;
  audit_anchor: AuditAnchorTable;
  person_keys: PersonKeyTable;
  change_log: ChangeLogTable;
  enrollment_codes: EnrollmentCodeTable;
  serve_lease: ServeLeaseTable;
  serve_instances: ServeInstanceTable;
  admin_tokens: AdminTokenTable;
  key_profiles: KeyProfileTable;
  sessions: SessionTable;
  invites: InviteTable;
  key_retirements: KeyRetirementTable;
}

export type TeamRow = Selectable<TeamTable>;
export type UserRow = Selectable<UserTable>;
export type CredentialRow = Selectable<CredentialTable>;
export type NewCredential = Insertable<CredentialTable>;
export type CredentialUpdate = Updateable<CredentialTable>;
export type GatewayKeyRow = Selectable<GatewayKeyTable>;
export type NewGatewayKey = Insertable<GatewayKeyTable>;
export type BudgetRow = Selectable<BudgetTable>;
export type KeyRetirementRow = Selectable<KeyRetirementTable>;
export type AuditRow = Selectable<AuditLogTable>;
export type ChangeRow = Selectable<ChangeLogTable>;
export type UsageRecordRow = Selectable<UsageRecordTable>;
export type EnrollmentCodeRow = Selectable<EnrollmentCodeTable>;
export type AdminTokenRow = Selectable<AdminTokenTable>;
export type KeyProfileRow = Selectable<KeyProfileTable>;
export type SessionRow = Selectable<SessionTable>;
export type InviteRow = Selectable<InviteTable>;
export type AlertRow = Selectable<AlertTable>;
export type { ColumnType };
