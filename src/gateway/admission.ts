// The admission pipeline of a Messages request, cheapest refusals first so that no key can make the
// gateway work beyond its limits: key valid → not expired/revoked → requests per minute and
// concurrency (no body needed) → parse (nesting, duplicate keys) → shape → environment → model allowed
// → tools allowed → max_tokens cap → the worst-case bound (per-request cap) → tokens per minute →
// budgets. Every refusal is returned (not thrown) as a GatewayError; every refusal or exception after
// the request slot was taken releases its concurrency slot exactly once (the request still counts).
import type { IncomingHttpHeaders } from 'node:http';
import {
  type Budgets,
  type Reservation,
  type ScopeLimits,
  type SharedReserveResult,
  scopeLimits,
} from '../budgets/budget-book.js';
import type { KeyScope } from '../keys/key-policy.js';
import { formatUsd } from '../lib/money.js';
import type { CostBound } from '../pricing/cost.js';
import { bareModelId, type ModelPrice, type PriceBook } from '../pricing/models.js';
import type { RateHeaders, RateLimiter, Ticket } from '../ratelimit/rate-limiter.js';
import { type GatewayError, invalidRequest, permission, UNAUTHENTICATED } from './anthropic-errors.js';
import type { CandidateQuery, CredentialPool, UpstreamCredential } from './credential-pool.js';
import { type ParsedBody, parseJsonObject, parseScanned, scanBody } from './json-body.js';
import type { KeyCache, KeyEntry, SubjectInfo } from './key-cache.js';
import { budgetRefusal, budgetsUnavailable, rateRefusal } from './refusals.js';
import { boundForwarded, boundRequest, forwardedBody, type RequestBound } from './request-bound.js';
import type { SharedSteps } from './shared-steps.js';

export interface AdmissionPolicy {
  /** claude.models_allowed as bare ids; null = every priced model. */
  readonly modelsAllowed: ReadonlySet<string> | null;
  readonly orgId: string;
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
  readonly budgets: Budgets;
  /** With Redis: the token lanes and the budgets asked in one round trip (shared-steps.ts). */
  readonly sharedSteps?: SharedSteps | null;
  readonly policy: AdmissionPolicy;
  /** server.json_max_depth: bodies nested deeper are refused unparsed. */
  readonly maxJsonDepth: number;
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

/** Bodies above this size are admitted in several event-loop turns (see admitBody). */
export const LARGE_BODY_BYTES = 1024 * 1024;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export type Result<T> = { ok: true; value: T } | { ok: false; error: GatewayError };

const refuse = (error: GatewayError): { ok: false; error: GatewayError } => ({ ok: false, error });

/**
 * The credential of `Authorization: Bearer <token>`, or null. The scheme is case-insensitive and may
 * be followed by any run of spaces or tabs (RFC 9110 §11.1); leading whitespace is tolerated too.
 */
export function bearerToken(auth: string | string[] | undefined): string | null {
  if (typeof auth !== 'string') return null;
  let i = 0;
  while (i < auth.length && (auth.charCodeAt(i) === 0x20 || auth.charCodeAt(i) === 0x09)) i++;
  if (auth.length < i + 7 || auth.slice(i, i + 6).toLowerCase() !== 'bearer') return null;
  const sep = auth.charCodeAt(i + 6);
  if (sep !== 0x20 && sep !== 0x09) return null;
  const token = auth.slice(i + 7).trim();
  return token === '' ? null : token;
}

/** Reads the presented key from `x-api-key` or `Authorization: Bearer` (both may carry the same value). */
export function presentedKey(headers: Record<string, string | string[] | undefined>): string | null {
  const x = headers['x-api-key'];
  const apiKey = typeof x === 'string' ? x.trim() : null;
  const bearer = bearerToken(headers.authorization);
  if (apiKey && bearer && apiKey !== bearer) return null;
  return apiKey || bearer || null;
}

/** The caller's own key(s), scrubbed from anything an upstream error might echo back. */
export function presentedSecrets(headers: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  const x = headers['x-api-key'];
  if (typeof x === 'string') out.push(x);
  const bearer = bearerToken(headers.authorization);
  if (bearer !== null) out.push(bearer);
  return out;
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
  const seen = deps.keys.peek(presented);
  const key = seen !== undefined ? seen : await deps.keys.lookup(presented);
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

/**
 * Everything after authentication for POST /v1/messages, on the raw body: the request slot first (so a
 * limited key gets no parsing or bounding beyond its limit), then the body's checks, the bound, the
 * token limits and the budgets. A refusal releases the request's concurrency slot.
 */
export async function admitMessage(
  deps: AdmissionDeps,
  caller: Caller,
  raw: Buffer,
  headers: IncomingHttpHeaders,
  now: number,
): Promise<Result<Admitted>> {
  // With Redis, a small body is parsed and checked before the shared stores are asked, once, for the
  // request slot, the token lanes and the budgets together: that round trip costs more than the parse.
  // A large body takes its request slot alone first, so a limited key gets no parsing beyond its limit.
  const oneTrip = deps.sharedSteps && raw.length <= ONE_TRIP_MAX_BYTES ? deps.sharedSteps : null;
  let ticket: Ticket;
  let rateHeaders: RateHeaders | null = null;
  if (oneTrip) ticket = oneTrip.ticket(caller.key.id);
  else {
    // A promise only when a shared store (Redis) was asked: the in-process path does not wait a turn.
    const asked = deps.limiter.admitRequest(caller.key.id, caller.key, now);
    const request = asked instanceof Promise ? await asked : asked;
    if (!request.ok) return refuse(rateRefusal(request));
    ticket = request.ticket;
    rateHeaders = request.headers;
  }
  let result: Result<Admitted> | null = null;
  try {
    result = await admitBody(deps, caller, raw, headers, now, ticket, rateHeaders);
    return result;
  } finally {
    // Refused or thrown: the slot is released here, once (`finish` ignores a finished ticket).
    if (result === null || !result.ok) deps.limiter.finish(ticket, now, 0, 0);
  }
}

/** Bodies up to this size take their request slot with the tokens and budgets (see admitMessage). */
export const ONE_TRIP_MAX_BYTES = 16 * 1024;

async function admitBody(
  deps: AdmissionDeps,
  caller: Caller,
  raw: Buffer,
  headers: IncomingHttpHeaders,
  now: number,
  ticket: Ticket,
  /** The request step's headers, or null when the request slot is taken below, with the budgets. */
  requestHeaders: RateHeaders | null,
): Promise<Result<Admitted>> {
  const { key, subject } = caller;
  // A large body's steps (scan, parse, patch, bound, re-serialise) each run in their own event-loop turn,
  // so no request holds the loop longer than its longest step — about as long as JSON.parse of it.
  const large = raw.length > LARGE_BODY_BYTES;
  let parsed: ParsedBody;
  if (large) {
    const scan = scanBody(raw, deps.maxJsonDepth);
    if ('message' in scan) return refuse(invalidRequest(scan.message));
    await nextTurn();
    parsed = parseScanned(raw, scan);
  } else parsed = parseJsonObject(raw, deps.maxJsonDepth);
  if (!parsed.ok) return refuse(invalidRequest(parsed.message));
  const body = parsed.value;
  const shape = checkShape(body);
  if (shape) return refuse(shape);
  const model = body.model as string;
  const maxTokens = body.max_tokens as number;

  // 3. environment: some credential must serve the key's environment.
  const query = candidateQuery(caller);
  const candidates = deps.credentials.cachedCandidates(query) ?? (await deps.credentials.candidates(query));
  if (candidates.length === 0) return refuse(noCredential(caller));

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
  let bounded: RequestBound;
  if (large) {
    await nextTurn();
    const forwarded = forwardedBody(deps.policy, price, body);
    await nextTurn();
    bounded = boundForwarded(deps.policy, price, forwarded, maxTokens, headers);
  } else bounded = boundRequest(deps.policy, price, body, headers);
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

  // 7. token rate limits (input charged at a rough estimate, output at max_tokens; both corrected later)
  // 8. budgets: the worst case is reserved on every scope at once, or the request is refused.
  const scopes = budgetScopes(caller, deps.policy);
  const inputEstimate = Math.ceil(bound.inputTokensUpperBound / 4);
  let reserved: SharedReserveResult;
  let rateHeaders = requestHeaders;
  if (deps.sharedSteps && rateHeaders === null) {
    // All three in one script: nothing is taken, charged or reserved unless all fit.
    const all = await deps.sharedSteps.admit(ticket, key, now, inputEstimate, maxTokens, scopes, worst);
    if ('kind' in all) return refuse(rateRefusal(all));
    reserved = all;
    rateHeaders = all.headers ?? {};
  } else if (deps.sharedSteps) {
    // Both in one script: nothing is charged or reserved unless both fit.
    const both = await deps.sharedSteps.tokensAndBudget(
      ticket,
      key,
      now,
      inputEstimate,
      maxTokens,
      scopes,
      worst,
    );
    if ('kind' in both) return refuse(rateRefusal(both));
    reserved = both;
  } else {
    const charged = deps.limiter.admitTokens(ticket, key, now, inputEstimate, maxTokens);
    const tokens = charged instanceof Promise ? await charged : charged;
    if (tokens !== null) return refuse(rateRefusal(tokens));
    const loading = deps.budgets.prepare(scopes, now);
    if (loading) await loading;
    // The shared book (Redis) answers a promise; the in-process one answers at once (nothing awaited).
    const reserving = deps.budgets.reserve(scopes, worst, now);
    reserved = reserving instanceof Promise ? await reserving : reserving;
  }
  if (!reserved.ok)
    return refuse(
      reserved.refusal === null ? budgetsUnavailable(reserved) : budgetRefusal(reserved.refusal, key.owner),
    );
  let forwardedBytes = raw;
  if (bounded.forwarded !== body) {
    if (large) await nextTurn();
    forwardedBytes = Buffer.from(JSON.stringify(bounded.forwarded));
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
      body: forwardedBytes,
      autoCached: bounded.autoCached,
      bound,
      worstCaseMicro: worst,
      reservation: reserved.reservation,
      remainingMicro: reserved.remainingMicro,
      ticket,
      // Set on every path above (null only until the one-trip step answered).
      rateHeaders: rateHeaders ?? {},
      candidates,
    },
  };
}

/**
 * Which credentials may serve the caller: the key's pin and environment, the subject's user, team and
 * bring-your-own-key policy (the acted-for user's, when a service acts for one).
 */
export function candidateQuery(caller: Caller): CandidateQuery {
  return {
    pinnedId: caller.key.credentialId,
    userId: caller.subject.userId,
    teamId: caller.subject.teamId,
    environment: caller.key.environment,
    byok: caller.subject.byok,
  };
}

const BYOK_REQUIRED = permission(
  'this user must bring their own Anthropic key (byok: required); add it with PUT /api/v1/me/credentials/anthropic',
);

/**
 * The refusal when no credential can serve the caller (Messages, count_tokens and models alike): under
 * `byok: required` it says the user must bring their own key; otherwise, what is missing.
 */
export function noCredential(caller: Caller): GatewayError {
  const { key, subject } = caller;
  if (subject.byok === 'required') {
    return key.environment
      ? permission(
          `this user must bring their own Anthropic key for environment ${key.environment} (byok: required); add it with PUT /api/v1/me/credentials/anthropic`,
        )
      : BYOK_REQUIRED;
  }
  return permission(
    key.environment
      ? `no active Anthropic credential serves environment ${key.environment} for this key`
      : 'no active Anthropic credential is configured for this key (add one with `tollgate credential add`)',
  );
}

/** The budget scopes of a request: key, subject user, the subject's team, the org. */
export function budgetScopes(caller: Caller, policy: Pick<AdmissionPolicy, 'orgId'>): readonly ScopeLimits[] {
  const { key, subject } = caller;
  // The key's scope is built with its cache entry; the subject's are built once and shared by all of
  // its keys (cache entries are replaced whenever keys, users, teams or budgets change). Only the
  // short list is per request: memory per cached key stays small. The org's limits come with the
  // subject (loaded once per cache generation, like the user's and the team's).
  let shared = sharedScopes.get(subject);
  if (shared?.policy !== policy) {
    const user = scopeLimits('user', subject.userId, subject.userName, subject.userLimits);
    const org = scopeLimits('org', policy.orgId, 'org', subject.orgLimits);
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
  readonly policy: Pick<AdmissionPolicy, 'orgId'>;
  readonly user: ScopeLimits;
  readonly team: ScopeLimits | null;
  readonly org: ScopeLimits;
}
const sharedScopes = new WeakMap<SubjectInfo, SubjectScopes>();

/**
 * No model writes more output than this (the largest today: 128k); above it a worst case would be
 * priced beyond any budget, and far above it beyond a safe integer of micro-USD.
 */
const MAX_TOKENS_CEILING = 1_000_000;

/** The fields Tollgate needs before it can bound a request; the rest is the upstream's to validate. */
function checkShape(body: Record<string, unknown>): GatewayError | null {
  if (typeof body.model !== 'string' || body.model.length === 0 || body.model.length > 200) {
    return invalidRequest('model: a model id string is required');
  }
  const max = body.max_tokens;
  if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1) {
    return invalidRequest('max_tokens: a positive integer is required');
  }
  if (max > MAX_TOKENS_CEILING) {
    return invalidRequest(`max_tokens: at most ${MAX_TOKENS_CEILING} (no model writes more)`);
  }
  if (!Array.isArray(body.messages)) return invalidRequest('messages: an array is required');
  if (body.tools !== undefined && !Array.isArray(body.tools))
    return invalidRequest('tools: must be an array');
  return null;
}
