// The free endpoints: count_tokens and the model list. Authenticated, policy-checked (models),
// rate-limited per request, and recorded (at zero cost) like every upstream call.
import { ZERO_USAGE } from '../pricing/cost.js';
import { bareModelId } from '../pricing/models.js';
import { authenticate, type Caller, candidateQuery } from './admission.js';
import { invalidRequest, notFound, permission } from './anthropic-errors.js';
import { attemptDeps, callUpstream, type FailedAttempt } from './attempts.js';
import { parseJsonObject } from './json-body.js';
import type { GatewayRequest, MessagesDeps } from './messages.js';
import { presentedSecrets } from './messages.js';
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
  const auth = await authenticate(deps, req.headers, deps.clock(), 'inference');
  if (!auth.ok) return sendError(req.res, auth.error, req.id);
  const parsed = parseJsonObject(req.body, deps.maxJsonDepth);
  if (!parsed.ok) return sendError(req.res, invalidRequest(parsed.message), req.id);
  const model = parsed.value.model;
  if (typeof model !== 'string')
    return sendError(req.res, invalidRequest('model: a model id string is required'), req.id);
  if (!modelAllowed(deps, auth.value, model))
    return sendError(req.res, permission(`model ${model} is not allowed for this key`), req.id);
  await forwardFree(deps, req, auth.value, 'count_tokens', 'POST', model, req.body);
}

export async function handleModels(
  deps: MessagesDeps,
  req: GatewayRequest,
  modelId: string | null,
): Promise<void> {
  const auth = await authenticate(deps, req.headers, deps.clock(), 'inference');
  if (!auth.ok) return sendError(req.res, auth.error, req.id);
  if (modelId !== null && !modelAllowed(deps, auth.value, modelId)) {
    return sendError(req.res, notFound(`model ${modelId} is not available to this key`), req.id);
  }
  await forwardFree(deps, req, auth.value, 'models', 'GET', modelId, null);
}

async function forwardFree(
  deps: MessagesDeps,
  req: GatewayRequest,
  caller: Caller,
  endpoint: Endpoint,
  method: 'GET' | 'POST',
  model: string | null,
  body: Buffer | null,
): Promise<void> {
  const now = deps.clock();
  const query = candidateQuery(caller);
  const candidates = deps.credentials.cachedCandidates(query) ?? (await deps.credentials.candidates(query));
  if (candidates.length === 0)
    return sendError(
      req.res,
      permission('no active Anthropic credential is configured for this key'),
      req.id,
    );
  const admitted = deps.limiter.admit(caller.key.id, caller.key, now, 0, 0);
  if (!admitted.ok) return sendError(req.res, rateRefusal(admitted), req.id);
  const record = (f: {
    at: number;
    credentialId: string | null;
    status: number;
    outcome: string;
    requestId: string | null;
    latency: number;
  }) =>
    deps.ledger.append(
      usageRecord(caller, {
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
      }),
    );
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
  try {
    const result = await callUpstream(attemptDeps(deps.attempts, deps.clock, onFailedAttempt), {
      method,
      path: req.url,
      headers: upstreamHeaders(req.headers),
      body,
      candidates,
      signal: abort,
      scrub: presentedSecrets(req.headers),
    });
    if (result.kind === 'aborted') return;
    if (result.kind === 'upstream-error') return sendUpstreamError(req.res, result, req.id);
    if (result.kind === 'gateway-error') return sendError(req.res, result.error, req.id);
    const chunks: Buffer[] = [];
    for await (const chunk of result.response.body) chunks.push(chunk as Buffer);
    let bytes: Buffer = Buffer.concat(chunks);
    if (endpoint === 'models' && model === null) bytes = filterModelList(deps, caller, bytes);
    const requestId = result.response.headers['request-id'];
    pending.push(
      record({
        at: now,
        credentialId: result.credential.id,
        status: result.response.statusCode,
        outcome: 'ok',
        requestId: typeof requestId === 'string' ? requestId : null,
        latency: deps.clock() - now,
      }),
    );
    await Promise.allSettled(pending);
    if (req.res.destroyed) return;
    req.res.writeHead(result.response.statusCode, {
      'content-type': 'application/json',
      'request-id': typeof requestId === 'string' ? requestId : req.id,
      'x-tollgate-request-id': req.id,
      ...admitted.headers,
    });
    req.res.end(bytes);
  } finally {
    deps.limiter.finish(admitted.ticket, deps.clock(), 0, 0);
  }
}

/** Shows a key only the models it may use (and that Tollgate can price). */
function filterModelList(deps: MessagesDeps, caller: Caller, bytes: Buffer): Buffer {
  try {
    const list = JSON.parse(bytes.toString('utf8')) as { data?: Array<{ id?: unknown }> };
    if (!Array.isArray(list.data)) return bytes;
    list.data = list.data.filter((m) => typeof m.id === 'string' && modelAllowed(deps, caller, m.id));
    return Buffer.from(JSON.stringify(list));
  } catch {
    return bytes;
  }
}
