// The free endpoints: count_tokens and the model list. Authenticated, rate-limited per request before
// any body is read, policy-checked (models: a key sees and pages over only the models it may use), and
// recorded (at zero cost) like every upstream call.
import { ZERO_USAGE } from '../pricing/cost.js';
import { bareModelId } from '../pricing/models.js';
import { authenticate, type Caller, candidateQuery, noCredential, presentedSecrets } from './admission.js';
import { invalidRequest, notFound, permission } from './anthropic-errors.js';
import { attemptDeps, callUpstream, type FailedAttempt } from './attempts.js';
import { parseJsonObject } from './json-body.js';
import type { SubjectInfo } from './key-cache.js';
import { type GatewayRequest, type MessagesDeps, refuse } from './messages.js';
import { rateRefusal } from './refusals.js';
import { sendError, sendUpstreamError, upstreamHeaders } from './respond.js';
import { Cancel } from './upstream.js';
import { usageRecord } from './usage-record.js';

type Endpoint = 'count_tokens' | 'models';

function modelAllowed(deps: MessagesDeps, caller: Caller, model: string): boolean {
  const bare = bareModelId(model);
  if (caller.key.models && !caller.key.models.has(bare)) return false;
  if (deps.policy.modelsAllowed && !deps.policy.modelsAllowed.has(bare)) return false;
  return deps.prices.lookup(model) !== null;
}

export async function handleCountTokens(deps: MessagesDeps, req: GatewayRequest): Promise<void> {
  const started = performance.now();
  const now = deps.clock();
  const auth = await authenticate(deps, req.headers, now, 'inference');
  if (!auth.ok) return refuse(deps, req, 'count_tokens', started, null, auth.error);
  const subject = auth.value.subject;
  const asked = deps.limiter.admitRequest(auth.value.key.id, auth.value.key, now);
  const admitted = asked instanceof Promise ? await asked : asked;
  if (!admitted.ok) return refuse(deps, req, 'count_tokens', started, subject, rateRefusal(admitted));
  let model: string | null = null;
  const upstream = { ms: 0 };
  try {
    const parsed = parseJsonObject(req.body, deps.maxJsonDepth);
    if (!parsed.ok)
      return refuse(deps, req, 'count_tokens', started, subject, invalidRequest(parsed.message));
    const named = parsed.value.model;
    if (typeof named !== 'string')
      return refuse(
        deps,
        req,
        'count_tokens',
        started,
        subject,
        invalidRequest('model: a model id string is required'),
      );
    if (!modelAllowed(deps, auth.value, named))
      return refuse(
        deps,
        req,
        'count_tokens',
        started,
        subject,
        permission(`model ${named} is not allowed for this key`),
      );
    model = named;
    await forwardFree(
      deps,
      req,
      auth.value,
      admitted.headers,
      'count_tokens',
      'POST',
      named,
      req.body,
      null,
      upstream,
    );
  } finally {
    deps.limiter.finish(admitted.ticket, deps.clock(), 0, 0);
    if (model !== null) ended(deps, req, 'count_tokens', started, subject, model, upstream.ms);
  }
}

/** A request that was admitted ends: its status, model, total and upstream time to the observer. */
function ended(
  deps: MessagesDeps,
  req: GatewayRequest,
  endpoint: Endpoint,
  started: number,
  subject: SubjectInfo,
  model: string | null,
  upstreamMs: number,
): void {
  deps.observer.end(
    endpoint,
    req.res.statusCode,
    subject,
    model,
    performance.now() - started,
    upstreamMs,
    null,
  );
}

export async function handleModels(
  deps: MessagesDeps,
  req: GatewayRequest,
  modelId: string | null,
): Promise<void> {
  const started = performance.now();
  const now = deps.clock();
  const auth = await authenticate(deps, req.headers, now, 'inference');
  if (!auth.ok) return refuse(deps, req, 'models', started, null, auth.error);
  const subject = auth.value.subject;
  const asked = deps.limiter.admitRequest(auth.value.key.id, auth.value.key, now);
  const admitted = asked instanceof Promise ? await asked : asked;
  if (!admitted.ok) return refuse(deps, req, 'models', started, subject, rateRefusal(admitted));
  let forwarded = false;
  const upstream = { ms: 0 };
  try {
    if (modelId !== null) {
      // A model the key may not use answers as an unknown one would.
      if (!modelAllowed(deps, auth.value, modelId))
        return refuse(deps, req, 'models', started, subject, notFound(`model: ${modelId}`));
      forwarded = true;
      await forwardFree(
        deps,
        req,
        auth.value,
        admitted.headers,
        'models',
        'GET',
        modelId,
        null,
        null,
        upstream,
      );
      return;
    }
    const page = pageQuery(req.url);
    if (typeof page === 'string') return refuse(deps, req, 'models', started, subject, invalidRequest(page));
    forwarded = true;
    await forwardFree(deps, req, auth.value, admitted.headers, 'models', 'GET', null, null, page, upstream);
  } finally {
    deps.limiter.finish(admitted.ticket, deps.clock(), 0, 0);
    // The model list is not about one model: its requests carry none (a model id here is the caller's).
    if (forwarded) ended(deps, req, 'models', started, subject, null, upstream.ms);
  }
}

interface PageQuery {
  readonly limit: number;
  readonly afterId: string | null;
  readonly beforeId: string | null;
  /** The client's other query parameters (e.g. `beta=true`), passed on upstream. */
  readonly rest: URLSearchParams;
}

const PAGE_LIMIT_MAX = 1000;
const WHOLE = /^\d+$/;

/** The list's paging, as Anthropic reads it: `limit` 1–1000 (default 20), `after_id`, `before_id`. */
function pageQuery(url: string): PageQuery | string {
  const q = url.indexOf('?');
  const rest = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
  const rawLimit = rest.get('limit');
  const limit = rawLimit === null ? 20 : WHOLE.test(rawLimit) ? Number(rawLimit) : Number.NaN;
  if (!(limit >= 1 && limit <= PAGE_LIMIT_MAX)) return 'limit: Input should be between 1 and 1000';
  const afterId = rest.get('after_id');
  const beforeId = rest.get('before_id');
  rest.delete('limit');
  rest.delete('after_id');
  rest.delete('before_id');
  return { limit, afterId, beforeId, rest };
}

/** Upstream list pages Tollgate reads (1000 models each) before it filters and pages for the key. */
const UPSTREAM_PAGES_MAX = 5;

interface ListedModel {
  readonly id?: unknown;
}

async function forwardFree(
  deps: MessagesDeps,
  req: GatewayRequest,
  caller: Caller,
  rateHeaders: Record<string, string>,
  endpoint: Endpoint,
  method: 'GET' | 'POST',
  model: string | null,
  body: Buffer | null,
  page: PageQuery | null,
  /** Receives the time spent on the upstream (every page's call and body). */
  upstream: { ms: number },
): Promise<void> {
  const query = candidateQuery(caller);
  const candidates = deps.credentials.cachedCandidates(query) ?? (await deps.credentials.candidates(query));
  if (candidates.length === 0) return sendError(req.res, noCredential(caller), req.id);
  const subject = caller.subject;
  const record = (f: {
    at: number;
    credentialId: string | null;
    status: number;
    outcome: string;
    requestId: string | null;
    latency: number;
  }) => {
    const row = usageRecord(caller, {
      id: deps.newId(),
      at: f.at,
      endpoint,
      model,
      credentialId: f.credentialId,
      usage: ZERO_USAGE,
      costMicro: 0,
      price: null,
      latencyMs: f.latency,
      status: f.status,
      outcome: f.outcome,
      upstreamRequestId: f.requestId,
      stream: false,
      partial: false,
      estimated: false,
      attempts: 1,
    });
    deps.observer.call(subject, row);
    return deps.ledger.append(row);
  };
  const pending: Promise<void>[] = [];
  const onFailedAttempt = (a: FailedAttempt) =>
    pending.push(
      record({
        at: a.startedAt,
        credentialId: a.credential.id,
        status: a.status,
        outcome: a.outcome,
        requestId: a.upstreamRequestId,
        latency: a.endedAt - a.startedAt,
      }),
    );
  const abort = new Cancel();
  req.res.on('close', () => abort.cancel());
  // The model list is read whole (up to UPSTREAM_PAGES_MAX pages), filtered, then paged for the key.
  const listed: ListedModel[] = [];
  let after: string | null = null;
  for (let pageNo = 0; ; pageNo++) {
    const at = deps.clock();
    let path = req.url;
    if (page) {
      const q = new URLSearchParams(page.rest);
      q.set('limit', String(PAGE_LIMIT_MAX));
      if (after !== null) q.set('after_id', after);
      path = `/v1/models?${q.toString()}`;
    }
    const from = performance.now();
    const result = await callUpstream(attemptDeps(deps.attempts, deps.clock, onFailedAttempt), {
      method,
      path,
      headers: upstreamHeaders(req.headers),
      body,
      candidates,
      signal: abort,
      scrub: presentedSecrets(req.headers),
    });
    if (result.kind !== 'success') upstream.ms += performance.now() - from;
    if (result.kind === 'aborted') return;
    if (result.kind === 'upstream-error') return sendUpstreamError(req.res, result, req.id);
    if (result.kind === 'gateway-error') return sendError(req.res, result.error, req.id);
    const chunks: Buffer[] = [];
    for await (const chunk of result.response.body) chunks.push(chunk as Buffer);
    upstream.ms += performance.now() - from;
    let bytes: Buffer = Buffer.concat(chunks);
    const requestId = result.response.headers['request-id'];
    pending.push(
      record({
        at,
        credentialId: result.credential.id,
        status: result.response.statusCode,
        outcome: 'ok',
        requestId: typeof requestId === 'string' ? requestId : null,
        latency: deps.clock() - at,
      }),
    );
    if (page) {
      const list = readList(bytes);
      if (list === null) {
        await Promise.allSettled(pending);
        return sendError(
          req.res,
          { status: 502, type: 'api_error', message: 'the upstream model list could not be read' },
          req.id,
        );
      }
      for (const m of list.data) listed.push(m);
      const last = list.data[list.data.length - 1];
      if (list.has_more === true && typeof last?.id === 'string' && pageNo + 1 < UPSTREAM_PAGES_MAX) {
        after = last.id;
        continue;
      }
      const paged = pageFor(deps, caller, listed, page);
      if (typeof paged === 'string') {
        await Promise.allSettled(pending);
        return sendError(req.res, invalidRequest(paged), req.id);
      }
      bytes = Buffer.from(JSON.stringify(paged));
    }
    await Promise.allSettled(pending);
    if (req.res.destroyed) return;
    req.res.writeHead(result.response.statusCode, {
      'content-type': 'application/json',
      'request-id': typeof requestId === 'string' ? requestId : req.id,
      'x-tollgate-request-id': req.id,
      'x-tollgate-credential-source': result.credential.pool,
      ...rateHeaders,
    });
    req.res.end(bytes);
    return;
  }
}

function readList(bytes: Buffer): { data: ListedModel[]; has_more?: unknown } | null {
  try {
    const list = JSON.parse(bytes.toString('utf8')) as { data?: unknown; has_more?: unknown };
    if (!Array.isArray(list.data)) return null;
    const data = list.data.filter((m): m is ListedModel => typeof m === 'object' && m !== null);
    return { data, has_more: list.has_more };
  } catch {
    return null;
  }
}

/**
 * One page of the models the key may use (and that Tollgate can price), by Anthropic's cursor rules:
 * `after_id` pages forward, `before_id` backward (the `limit` models just before it).
 */
function pageFor(deps: MessagesDeps, caller: Caller, listed: readonly ListedModel[], page: PageQuery) {
  const usable = listed.filter((m) => typeof m.id === 'string' && modelAllowed(deps, caller, m.id));
  const indexOf = (id: string) => usable.findIndex((m) => m.id === id);
  let start = 0;
  let end = usable.length;
  let hasMore: boolean;
  if (page.beforeId !== null) {
    const index = indexOf(page.beforeId);
    if (index < 0) return `before_id: unknown model ${page.beforeId}`;
    end = index;
    start = Math.max(0, end - page.limit);
    hasMore = start > 0;
  } else {
    if (page.afterId !== null) {
      const index = indexOf(page.afterId);
      if (index < 0) return `after_id: unknown model ${page.afterId}`;
      start = index + 1;
    }
    end = Math.min(usable.length, start + page.limit);
    hasMore = end < usable.length;
  }
  const data = usable.slice(start, end);
  const first = data[0]?.id;
  const last = data[data.length - 1]?.id;
  return {
    data,
    has_more: hasMore,
    first_id: typeof first === 'string' ? first : null,
    last_id: typeof last === 'string' ? last : null,
  };
}
