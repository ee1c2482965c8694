// POST /v1/messages: authenticate, admit (policy, rate limits, budget reservation), forward with
// failover, relay, record durably, settle.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Clock } from '../lib/clock.js';
import { formatUsd } from '../lib/money.js';
import { costMicro, type Usage, ZERO_USAGE } from '../pricing/cost.js';
import type { Ledger } from '../usage/ledger.js';
import {
  type AdmissionDeps,
  type Admitted,
  admitMessage,
  authenticate,
  presentedSecrets,
} from './admission.js';
import type { GatewayError } from './anthropic-errors.js';
import {
  type AttemptDeps,
  attemptDeps,
  type CallResult,
  callUpstream,
  type FailedAttempt,
} from './attempts.js';
import { readJson, relayStream } from './relay.js';
import { sendError, sendUpstreamError, upstreamHeaders } from './respond.js';
import { Cancel } from './upstream.js';
import { usageRecord } from './usage-record.js';

export interface MessagesDeps extends AdmissionDeps {
  readonly ledger: Ledger;
  readonly clock: Clock;
  readonly maxJsonDepth: number;
  readonly attempts: Omit<AttemptDeps, 'onFailedAttempt' | 'now'>;
  readonly newId: () => string;
}

export interface GatewayRequest {
  readonly id: string;
  readonly headers: IncomingHttpHeaders;
  /** Path and query as the client sent them; the query passes through (e.g. `?beta=true`). */
  readonly url: string;
  readonly body: Buffer;
  readonly res: ServerResponse;
}

export async function handleMessages(deps: MessagesDeps, req: GatewayRequest): Promise<void> {
  const started = performance.now();
  const now = deps.clock();
  const auth = await authenticate(deps, req.headers, now, 'inference');
  if (!auth.ok) return sendError(req.res, auth.error, req.id);
  if (!deps.ledger.hasCapacity()) {
    return sendError(
      req.res,
      { status: 503, type: 'overloaded_error', message: 'Tollgate is overloaded; retry shortly' },
      req.id,
    );
  }
  const admission = await admitMessage(deps, auth.value, req.body, req.headers, now);
  if (!admission.ok) return sendError(req.res, admission.error, req.id);
  const admitted = admission.value;

  // Streams are aborted upstream when the client leaves (that stops generation and billing). A JSON
  // answer is awaited even then — it is billed either way and its usage is recorded exactly — which
  // also spares the non-streaming hot path an abort signal's cost in undici.
  const abort = admitted.stream ? new Cancel() : null;
  const clientGone = () => req.res.destroyed && !req.res.writableFinished;
  if (abort) {
    req.res.on('close', () => {
      if (!req.res.writableFinished) abort.cancel();
    });
  }

  let settled = false;
  const finish = (usage: Usage, costed: number) => {
    if (settled) return;
    settled = true;
    deps.budgets.settle(admitted.reservation, costed);
    deps.limiter.finish(
      admitted.ticket,
      deps.clock(),
      usage.inputTokens + usage.cacheWrite5mTokens + usage.cacheWrite1hTokens,
      usage.outputTokens,
    );
  };
  // Records of failed attempts (rare): awaited with the answer's own before its last byte.
  let records: Promise<void>[] | null = null;
  const onFailedAttempt = (a: FailedAttempt) => {
    records ??= [];
    records.push(
      deps.ledger.append(
        usageRecord(admitted, {
          id: deps.newId(),
          at: a.startedAt,
          endpoint: 'messages',
          model: admitted.model,
          credentialId: a.credential.id,
          usage: ZERO_USAGE,
          costMicro: 0,
          price: admitted.price,
          latencyMs: a.endedAt - a.startedAt,
          status: a.status,
          outcome: a.outcome,
          upstreamRequestId: a.upstreamRequestId,
          stream: admitted.stream,
          partial: false,
          estimated: false,
          attempts: 1,
        }),
      ),
    );
  };

  let result: CallResult;
  try {
    result = await callUpstream(attemptDeps(deps.attempts, deps.clock, onFailedAttempt), {
      method: 'POST',
      path: req.url,
      headers: upstreamHeaders(req.headers),
      body: admitted.body,
      candidates: admitted.candidates,
      signal: abort,
      scrub: presentedSecrets(req.headers),
    });
  } catch (error) {
    finish(ZERO_USAGE, 0);
    throw error;
  }

  if (result.kind !== 'success') {
    finish(ZERO_USAGE, 0);
    if (records) await Promise.allSettled(records);
    if (result.kind === 'aborted') return;
    if (result.kind === 'upstream-error') return sendUpstreamError(req.res, result, req.id);
    return sendError(req.res, result.error, req.id);
  }

  const { response, credential, attempts, startedAt } = result;
  const headers = successHeaders(admitted, req.id, response.headers['request-id']);
  const record = (
    usage: Usage,
    flags: {
      partial: boolean;
      estimated: boolean;
      outcome: string;
      upstreamRequestId: string | null;
      /** The usage comes from the SSE tap (its own conservative estimate when cut short). */
      fromTap?: boolean;
    },
  ) => {
    // A JSON answer that could not be read (unparseable, or cut off before its usage arrived) is
    // charged at the reserved worst case: never under-count what the upstream may have billed.
    const unknown = flags.outcome === 'unreadable' || (flags.outcome === 'connection_lost' && !flags.fromTap);
    const cost = unknown ? admitted.worstCaseMicro : costMicro(admitted.price, usage);
    finish(usage, cost);
    return deps.ledger.append(
      usageRecord(admitted, {
        id: req.id,
        at: startedAt,
        endpoint: 'messages',
        model: admitted.model,
        credentialId: credential.id,
        usage,
        costMicro: cost,
        price: admitted.price,
        latencyMs: performance.now() - started,
        status: response.statusCode,
        outcome: flags.outcome,
        upstreamRequestId: flags.upstreamRequestId,
        stream: admitted.stream,
        partial: flags.partial,
        estimated: flags.estimated,
        attempts,
      }),
    );
  };

  if (admitted.stream && String(response.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    await relayStream(response, req.res, headers, clientGone, async (relayed) => {
      await record(relayed.usage, {
        partial: relayed.partial,
        estimated: relayed.estimated,
        outcome: relayed.outcome,
        upstreamRequestId: relayed.upstreamRequestId,
        fromTap: true,
      });
      if (records) await Promise.allSettled(records);
    });
    return;
  }
  const { relayed, bytes } = await readJson(response);
  await record(relayed.usage, relayed);
  if (records) await Promise.allSettled(records);
  if (clientGone()) return;
  if (bytes === null) {
    return sendError(
      req.res,
      { status: 502, type: 'api_error', message: 'the upstream connection was lost' },
      req.id,
    );
  }
  headers['content-type'] = 'application/json';
  req.res.writeHead(response.statusCode, headers);
  req.res.end(bytes);
}

/** The answer's headers, in the request's own rate-limit header object (fresh per request). */
function successHeaders(
  a: Admitted,
  requestId: string,
  upstreamRequestId: string | string[] | undefined,
): Record<string, string> {
  const headers = a.rateHeaders;
  headers['x-tollgate-request-id'] = requestId;
  headers['request-id'] = typeof upstreamRequestId === 'string' ? upstreamRequestId : requestId;
  if (a.remainingMicro !== null) headers['x-tollgate-budget-remaining-usd'] = formatUsd(a.remainingMicro);
  return headers;
}

export type { GatewayError };
