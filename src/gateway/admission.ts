// The admission pipeline of a Messages request, in the contract's fixed order:
// key valid → not expired/revoked → environment → model allowed → tools allowed → max_tokens cap →
// rate limits → budgets. Every refusal is returned (not thrown) as a GatewayError.
import type { IncomingHttpHeaders } from 'node:http';
import { type BudgetBook, type Reservation, type ScopeLimits, scopeLimits } from '../budgets/budget-book.js';
import type { KeyScope } from '../keys/key-policy.js';
import { formatUsd } from '../lib/money.js';
import type { CostBound } from '../pricing/cost.js';
import { bareModelId, type ModelPrice, type PriceBook } from '../pricing/models.js';
import type { RateLimiter, Ticket } from '../ratelimit/limiter.js';
import { type GatewayError, invalidRequest, permission, UNAUTHENTICATED } from './anthropic-errors.js';
import type { CandidateQuery, CredentialPool, UpstreamCredential } from './credential-pool.js';
import type { KeyCache, KeyEntry, SubjectInfo } from './key-cache.js';
import { budgetRefusal, rateRefusal } from './refusals.js';
import { boundRequest } from './request-bound.js';

export interface AdmissionPolicy {
  /** claude.models_allowed as bare ids; null = every priced model. */
  readonly modelsAllowed: ReadonlySet<string> | null;
  readonly orgId: string;
  readonly orgLimits: ScopeLimits['limits'];
  readonly promptCaching: 'auto' | 'off';
  readonly webSearchDefaultMaxUses: number;
  readonly imageTokenAllowance: number;
  readonly documentTokenAllowance: number;
}

export interface AdmissionDeps {
  readonly keys: KeyCache;
  readonly credentials: CredentialPool;
  readonly prices: PriceBook;
  readonly limiter: RateLimiter;
  readonly budgets: BudgetBook;
  readonly policy: AdmissionPolicy;
}

export interface Caller {
  readonly key: KeyEntry;
  /** Whose credentials and budgets apply: the key's owner, or the user a service acts for. */
  readonly subject: SubjectInfo;
  /** The service account acting for `subject`, or null. */
  readonly serviceUserId: string | null;
}

export interface Admitted extends Caller {
  readonly model: string;
  readonly price: ModelPrice;
  readonly stream: boolean;
  /** Bytes to forward: the client's own unless Tollgate had to add max_uses or a cache breakpoint. */
  readonly body: Buffer;
  readonly autoCached: boolean;
  /** What the request can use at most (prompt tokens, output, searches): the reservation's basis. */
  readonly bound: CostBound;
  /** The bound's cost, reserved on every budget scope (a record charged at the worst case carries
   * `worstCaseUsage(price, bound)`). */
  readonly worstCaseMicro: number;
  readonly reservation: Reservation;
  readonly remainingMicro: number | null;
  readonly ticket: Ticket;
  /** The rate-limit headers of the answer: a fresh object per request, which the answer extends. */
  readonly rateHeaders: Record<string, string>;
  readonly candidates: readonly UpstreamCredential[];
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: GatewayError };

const refuse = (error: GatewayError): { ok: false; error: GatewayError } => ({ ok: false, error });

/** Reads the presented key from `x-api-key` or `Authorization: Bearer` (both may carry the same value). */
export function presentedKey(headers: Record<string, string | string[] | undefined>): string | null {
  const x = headers['x-api-key'];
  const auth = headers.authorization;
  const apiKey = typeof x === 'string' ? x.trim() : null;
  const bearer = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7).trim() : null;
  if (apiKey && bearer && apiKey !== bearer) return null;
  return apiKey || bearer || null;
}

/** Steps 1–2 and the acting subject: valid, active, unexpired key whose owner still exists. */
export async function authenticate(
  deps: Pick<AdmissionDeps, 'keys'>,
  headers: Record<string, string | string[] | undefined>,
  now: number,
  scope: KeyScope,
): Promise<Result<Caller>> {
  const presented = presentedKey(headers);
  if (!presented) return refuse(UNAUTHENTICATED);
  const key = deps.keys.peek(presented) ?? (await deps.keys.lookup(presented));
  const usable = key?.status === 'active' && (key.expiresAt === null || key.expiresAt > now);
  if (!key || !usable) return refuse(UNAUTHENTICATED);
  if (!key.scopes.has(scope)) return refuse(permission(`this key does not have the ${scope} scope`));
  const onBehalf = headers['x-tollgate-user'];
  if (onBehalf === undefined) return { ok: true, value: { key, subject: key.owner, serviceUserId: null } };
  if (!key.scopes.has('act-for-users')) {
    return refuse(permission('x-tollgate-user needs a service key with the act-for-users scope'));
  }
  const name = Array.isArray(onBehalf) ? onBehalf[0] : onBehalf;
  const subject = name ? await deps.keys.subject(name) : null;
  if (!subject) return refuse(permission('the user named in x-tollgate-user does not exist'));
  return { ok: true, value: { key, subject, serviceUserId: key.owner.userId } };
}

/** Steps 3–8 for POST /v1/messages, after authentication and JSON parsing. */
export async function admitMessage(
  deps: AdmissionDeps,
  caller: Caller,
  body: Record<string, unknown>,
  raw: Buffer,
  headers: IncomingHttpHeaders,
  now: number,
): Promise<Result<Admitted>> {
  const { key, subject } = caller;
  const shape = checkShape(body);
  if (shape) return refuse(shape);
  const model = body.model as string;
  const maxTokens = body.max_tokens as number;

  // 3. environment: some credential must serve the key's environment.
  const query = candidateQuery(caller);
  const candidates = deps.credentials.cachedCandidates(query) ?? (await deps.credentials.candidates(query));
  if (candidates.length === 0) {
    return refuse(
      permission(
        key.environment
          ? `no active Anthropic credential serves environment ${key.environment} for this key`
          : 'no active Anthropic credential is configured for this key (add one with `tollgate credential add`)',
      ),
    );
  }

  // 4. model
  const bare = bareModelId(model);
  if (
    (key.models && !key.models.has(bare)) ||
    (deps.policy.modelsAllowed && !deps.policy.modelsAllowed.has(bare))
  ) {
    return refuse(permission(`model ${model} is not allowed for this key`));
  }
  const price = deps.prices.lookup(model);
  if (!price)
    return refuse(
      invalidRequest(
        `model ${model} has no price in Tollgate's table; an admin can add it under pricing: in tollgate.yml`,
      ),
    );

  // 5. tools
  if (key.tools && Array.isArray(body.tools)) {
    for (const tool of body.tools) {
      const name = typeof tool === 'object' && tool !== null ? (tool as { name?: unknown }).name : undefined;
      if (typeof name !== 'string' || !key.tools.has(name)) {
        return refuse(
          permission(`tool ${typeof name === 'string' ? name : '(unnamed)'} is not allowed for this key`),
        );
      }
    }
  }

  // 6. max_tokens and the worst case
  if (key.maxTokens !== null && maxTokens > key.maxTokens) {
    return refuse(
      invalidRequest(`max_tokens ${maxTokens} exceeds this key's cap of ${key.maxTokens}; lower max_tokens`),
    );
  }
  const bounded = boundRequest(deps.policy, price, body, headers);
  if (!bounded.ok)
    return refuse(invalidRequest(`Tollgate cannot bound the cost of this request: ${bounded.unbounded}`));
  const worst = bounded.worstCaseMicro;
  const bound = bounded.bound;
  if (key.maxCostPerRequestMicro !== null && worst > key.maxCostPerRequestMicro) {
    return refuse(
      invalidRequest(
        `the worst-case cost of this request ($${formatUsd(worst)}) exceeds this key's per-request cap ($${formatUsd(key.maxCostPerRequestMicro)}); lower max_tokens or shorten the prompt`,
      ),
    );
  }

  // 7. rate limits (input charged at a rough estimate, output at max_tokens; both corrected later)
  const admitted = deps.limiter.admit(
    key.id,
    key,
    now,
    Math.ceil(bound.inputTokensUpperBound / 4),
    maxTokens,
  );
  if (!admitted.ok) return refuse(rateRefusal(admitted));

  // 8. budgets: the worst case is reserved on every scope at once, or the request is refused.
  const scopes = budgetScopes(caller, deps.policy);
  const loading = deps.budgets.prepare(scopes, now);
  if (loading) await loading;
  const reserved = deps.budgets.reserve(scopes, worst, now);
  if (!reserved.ok) {
    deps.limiter.finish(admitted.ticket, now, 0, 0);
    return refuse(budgetRefusal(reserved.refusal, key.owner));
  }
  return {
    ok: true,
    // Spelled out, not `...caller`: V8 made the spread-then-extend literal the costliest step of
    // admission (~9 µs of ~13 per request, measured).
    value: {
      key,
      subject,
      serviceUserId: caller.serviceUserId,
      model,
      price,
      stream: body.stream === true,
      body: bounded.forwarded === body ? raw : Buffer.from(JSON.stringify(bounded.forwarded)),
      autoCached: bounded.autoCached,
      bound,
      worstCaseMicro: worst,
      reservation: reserved.reservation,
      remainingMicro: reserved.remainingMicro,
      ticket: admitted.ticket,
      rateHeaders: admitted.headers,
      candidates,
    },
  };
}

/** Which credentials may serve the caller: the key's pin and environment, the subject's user and team. */
export function candidateQuery(caller: Caller): CandidateQuery {
  return {
    pinnedId: caller.key.credentialId,
    userId: caller.subject.userId,
    teamId: caller.subject.teamId,
    environment: caller.key.environment,
  };
}

/** The budget scopes of a request: key, subject user, the subject's team, the org. */
export function budgetScopes(
  caller: Caller,
  policy: Pick<AdmissionPolicy, 'orgId' | 'orgLimits'>,
): readonly ScopeLimits[] {
  const { key, subject } = caller;
  // The key's scope is built with its cache entry; the subject's are built once and shared by all of
  // its keys (cache entries are replaced whenever keys, users, teams or budgets change). Only the
  // short list is per request: memory per cached key stays small.
  let shared = sharedScopes.get(subject);
  if (shared?.policy !== policy) {
    const user = scopeLimits('user', subject.userId, subject.userName, subject.userLimits);
    const org = scopeLimits('org', policy.orgId, 'org', policy.orgLimits);
    const team = subject.teamId
      ? scopeLimits('team', subject.teamId, subject.teamName ?? subject.teamId, subject.teamLimits)
      : null;
    shared = { policy, user, team, org };
    sharedScopes.set(subject, shared);
  }
  return shared.team
    ? [key.budget, shared.user, shared.team, shared.org]
    : [key.budget, shared.user, shared.org];
}

interface SubjectScopes {
  readonly policy: Pick<AdmissionPolicy, 'orgId' | 'orgLimits'>;
  readonly user: ScopeLimits;
  readonly team: ScopeLimits | null;
  readonly org: ScopeLimits;
}
const sharedScopes = new WeakMap<SubjectInfo, SubjectScopes>();

/** The fields Tollgate needs before it can bound a request; the rest is the upstream's to validate. */
function checkShape(body: Record<string, unknown>): GatewayError | null {
  if (typeof body.model !== 'string' || body.model.length === 0 || body.model.length > 200) {
    return invalidRequest('model: a model id string is required');
  }
  const max = body.max_tokens;
  if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1) {
    return invalidRequest('max_tokens: a positive integer is required');
  }
  if (!Array.isArray(body.messages)) return invalidRequest('messages: an array is required');
  if (body.tools !== undefined && !Array.isArray(body.tools))
    return invalidRequest('tools: must be an array');
  return null;
}
