// Verified gateway keys. A key is looked up in the database by its HMAC once (and again after any change
// the feed reports); after that it is found by the string presented, one Map read, so the hot path costs
// neither a checksum nor an HMAC. The cache holds presented keys in process memory, which already holds
// the pepper, the master key and the decrypted upstream credentials: it weakens nothing.
//
// Keys found and keys not found are remembered alike, in the same Map under the same eviction (oldest
// first), so a key seen before costs one Map read whether it exists or not: the time of a repeated
// guess tells nothing, and flooding the cache with guesses evicts both kinds in the order they came.

import { type ScopeLimits, scopeLimits } from '../budgets/budget-book.js';
import { loadOrgLimits } from '../budgets/org-limits.js';
import { hashGatewayKey, hasValidGatewayKeyShape } from '../crypto/gateway-key.js';
import type { Db } from '../db/connect.js';
import type { BudgetPeriod, ByokPolicy, Environment, UserRole } from '../db/schema.js';
import { decodeList, type KeyScope } from '../keys/key-policy.js';
import { bareModelId } from '../pricing/models.js';

export interface Limits {
  readonly [period: string]: number | undefined;
}

export interface SubjectInfo {
  readonly userId: string;
  readonly userName: string;
  readonly role: UserRole;
  readonly teamId: string | null;
  readonly teamName: string | null;
  readonly userLimits: Partial<Record<BudgetPeriod, number>>;
  readonly teamLimits: Partial<Record<BudgetPeriod, number>>;
  /** The org's limits (its budget rows, the configured monthly cap winning), shared by every subject. */
  readonly orgLimits: Partial<Record<BudgetPeriod, number>>;
  /**
   * The effective bring-your-own-key policy: the user's own setting, else the team's, else
   * `preferred`. Resolved here, once per cached subject, so a request only reads the field.
   */
  readonly byok: ByokPolicy;
}

export interface KeyEntry {
  readonly id: string;
  readonly status: 'active' | 'revoked';
  readonly expiresAt: number | null;
  /** Bare model ids; null = any allowed model. */
  readonly models: ReadonlySet<string> | null;
  readonly tools: ReadonlySet<string> | null;
  readonly maxTokens: number | null;
  readonly maxCostPerRequestMicro: number | null;
  readonly rpm: number | null;
  readonly inputTpm: number | null;
  readonly outputTpm: number | null;
  readonly concurrency: number | null;
  readonly environment: Environment | null;
  readonly credentialId: string | null;
  readonly scopes: ReadonlySet<KeyScope>;
  /**
   * The key's budget scope, whose id is the key's lineage (the first key of its rotation chain), built
   * once with the entry; the request's other scopes are shared.
   */
  readonly budget: ScopeLimits;
  /** The key's owner (a removed owner makes the key unusable). */
  readonly owner: SubjectInfo;
}

const SHARED_LISTS_MAX = 10_000;
const DEFAULT_SCOPES = '["inference"]';
const INFERENCE_ONLY: ReadonlySet<KeyScope> = new Set<KeyScope>(['inference']);
const ENVIRONMENTS: Readonly<Record<Environment, Environment>> = {
  dev: 'dev',
  staging: 'staging',
  prod: 'prod',
};
/** Shared by every key, user and team without budget rows. */
const NO_LIMITS: Partial<Record<BudgetPeriod, number>> = Object.freeze({});
const SUBJECT_CACHE_MAX = 50_000;
/**
 * Presented keys remembered, found or not; past this the oldest is forgotten (it then costs one HMAC and
 * one query again).
 */
const PRESENTED_CACHE_MAX = 100_000;

/** The org whose budget rows apply to every subject, and claude.max_monthly_spend_usd (null: none). */
export interface OrgBudget {
  readonly id: string;
  readonly capMicro: number | null;
}

export function createKeyCache(db: Db, pepper: Buffer, org: OrgBudget, capacity = PRESENTED_CACHE_MAX) {
  /** Presented string → its entry, or null for a key that does not exist (or whose owner was removed). */
  const byPresented = new Map<string, KeyEntry | null>();
  const scopeLists = new Map<string, ReadonlySet<KeyScope>>();
  const models = new Map<string, ReadonlySet<string>>();
  const tools = new Map<string, ReadonlySet<string>>();
  const subjects = new Map<string, SubjectInfo | null>();
  const sharedLimits = new Map<string, Readonly<Partial<Record<BudgetPeriod, number>>>>();
  let generation = 0;

  /**
   * A key seen before, by the exact string presented: its entry, or null when it does not exist;
   * undefined when not seen yet (then `lookup`). No await on the hot path.
   */
  function peek(presented: string): KeyEntry | null | undefined {
    return byPresented.get(presented);
  }

  /**
   * The key behind a presented secret, or null (bad shape, unknown, or its owner removed): the path for
   * a key `peek` does not know yet.
   */
  async function lookup(presented: string): Promise<KeyEntry | null> {
    // Shape and checksum first: garbage never costs an HMAC or a query.
    if (!hasValidGatewayKeyShape(presented)) return null;
    const started = generation;
    const entry = await load(hashGatewayKey(pepper, presented));
    // A change that arrived while loading may have made this entry stale; do not cache it then.
    if (started === generation) remember(presented, entry);
    return entry;
  }

  function remember(presented: string, entry: KeyEntry | null): void {
    if (byPresented.size >= capacity) {
      const oldest = byPresented.keys().next();
      if (!oldest.done) byPresented.delete(oldest.value);
    }
    byPresented.set(presented, entry);
  }

  async function load(hash: string): Promise<KeyEntry | null> {
    const row = await db.kysely
      .selectFrom('gateway_keys')
      .selectAll()
      .where('hash', '=', hash)
      .executeTakeFirst();
    if (!row) return null;
    const owner = await subject(row.user_id);
    if (!owner) return null;
    // Every string the row brings is a fresh copy: the few distinct statuses, environments and lists
    // are shared instead, so a cached key costs little more than its id and presented string.
    return {
      id: row.id,
      status: row.status === 'active' ? 'active' : 'revoked',
      expiresAt: row.expires_at,
      models: sharedList(models, row.models, bareModelId),
      tools: sharedList(tools, row.tools, (tool) => tool),
      maxTokens: row.max_tokens,
      maxCostPerRequestMicro: row.max_cost_per_request_micro,
      rpm: row.rpm,
      inputTpm: row.input_tpm,
      outputTpm: row.output_tpm,
      concurrency: row.concurrency,
      environment: row.environment === null ? null : (ENVIRONMENTS[row.environment] ?? row.environment),
      credentialId: row.credential_id,
      scopes:
        sharedList(scopeLists, row.scopes ?? DEFAULT_SCOPES, (scope) => scope as KeyScope) ?? INFERENCE_ONLY,
      // The key scope is the key's lineage (its rotations share one budget and its spend); the refusal
      // still names the key presented. An unrotated key's lineage is its id: the same string, shared.
      budget: scopeLimits(
        'key',
        row.lineage_id === row.id ? row.id : row.lineage_id,
        row.id,
        await limitsOf('key', row.lineage_id),
      ),
      owner,
    };
  }

  /**
   * One shared, never-mutated Set per distinct encoded list (thousands of keys share a handful), or
   * null for no list. Bounded: past SHARED_LISTS_MAX distinct lists the memo starts over.
   */
  function sharedList<T extends string>(
    memo: Map<string, ReadonlySet<T>>,
    encoded: string | null,
    item: (text: string) => T,
  ): ReadonlySet<T> | null {
    if (encoded === null) return null;
    let set = memo.get(encoded);
    if (!set) {
      const list = decodeList(encoded);
      if (list === null) return null;
      set = new Set(list.map(item));
      if (memo.size >= SHARED_LISTS_MAX) memo.clear();
      memo.set(encoded, set);
    }
    return set;
  }

  /** A live user with their team and budget limits, or null when removed/unknown; cached. */
  async function subject(userIdOrName: string, byName = false): Promise<SubjectInfo | null> {
    const cacheKey = byName ? `name:${userIdOrName}` : userIdOrName;
    if (subjects.has(cacheKey)) return subjects.get(cacheKey) ?? null;
    const started = generation;
    const user = await db.kysely
      .selectFrom('users')
      .leftJoin('teams', 'teams.id', 'users.team_id')
      .select([
        'users.id',
        'users.name',
        'users.role',
        'users.team_id',
        'users.byok',
        'teams.name as team_name',
        'teams.byok as team_byok',
      ])
      .where(byName ? 'users.name' : 'users.id', '=', userIdOrName)
      .where('users.removed_at', 'is', null)
      .executeTakeFirst();
    const info: SubjectInfo | null = user
      ? {
          userId: user.id,
          userName: user.name,
          role: user.role,
          teamId: user.team_id,
          teamName: user.team_name,
          userLimits: await limitsOf('user', user.id),
          teamLimits: user.team_id ? await limitsOf('team', user.team_id) : {},
          orgLimits: await orgLimits(),
          byok: effectiveByok(user.byok, user.team_byok),
        }
      : null;
    if (started === generation) {
      // Bounded: names sent in x-tollgate-user are caller-chosen, so unknown ones must not pile up.
      if (subjects.size >= SUBJECT_CACHE_MAX) subjects.clear();
      subjects.set(cacheKey, info);
    }
    return info;
  }

  // Read once per generation and shared: the change feed's 'budget' and 'org' kinds start a new one,
  // exactly as they do for users' and teams' limits.
  let orgRead: Promise<Partial<Record<BudgetPeriod, number>>> | null = null;
  function orgLimits(): Promise<Partial<Record<BudgetPeriod, number>>> {
    if (orgRead === null) {
      const read = loadOrgLimits(db.kysely, org.id, org.capMicro);
      orgRead = read;
      // A failed read is not remembered: the next subject load tries again.
      read.catch(() => {
        if (orgRead === read) orgRead = null;
      });
    }
    return orgRead;
  }

  async function limitsOf(
    scope: 'key' | 'user' | 'team',
    id: string,
  ): Promise<Partial<Record<BudgetPeriod, number>>> {
    const rows = await db.kysely
      .selectFrom('budgets')
      .select(['period', 'limit_micro'])
      .where('scope_type', '=', scope)
      .where('scope_id', '=', id)
      .orderBy('period')
      .execute();
    if (rows.length === 0) return NO_LIMITS;
    // Keys issued alike have the same limits: one shared, frozen object per distinct set.
    const memoKey = rows.map((r) => `${r.period}:${r.limit_micro}`).join(',');
    let limits = sharedLimits.get(memoKey);
    if (!limits) {
      const fresh: Partial<Record<BudgetPeriod, number>> = {};
      for (const r of rows) fresh[r.period] = r.limit_micro;
      limits = Object.freeze(fresh);
      if (sharedLimits.size >= SHARED_LISTS_MAX) sharedLimits.clear();
      sharedLimits.set(memoKey, limits);
    }
    return limits;
  }

  /** Forgets everything (called when the change feed reports keys, users, teams or budgets changed). */
  function invalidate(): void {
    generation++;
    orgRead = null;
    byPresented.clear();
    subjects.clear();
  }

  return {
    peek,
    lookup,
    subject: (name: string) => subject(name, true),
    invalidate,
    size: () => byPresented.size,
  };
}

export type KeyCache = ReturnType<typeof createKeyCache>;

/**
 * A user's own setting wins, else the team's, else `preferred` (null in a column means "not set").
 * Answers the shared literals, not the row's fresh strings.
 */
export function effectiveByok(user: ByokPolicy | null, team: ByokPolicy | null): ByokPolicy {
  const set = user ?? team;
  return set === 'required' ? 'required' : 'preferred';
}
