// POST /v1/messages: authenticate, admit (policy, rate limits, budget reservation), forward with
// failover, relay, record durably, settle.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Clock } from '../lib/clock.js';
import { formatUsd } from '../lib/money.js';
import { type GatewayObserver, type MetricsEndpoint, refusalKind } from '../metrics/store.js';
import { costMicro, type Usage, worstCaseUsage, ZERO_USAGE } from '../pricing/cost.js';
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
  callUpstream,
  type FailedAttempt,
  scrubUpstream,
} from './attempts.js';
import type { CredentialSource } from './credential-pool.js';
import type { SubjectInfo } from './key-cache.js';
import { type Relayed, readJson, relayStream } from './relay.js';
import { sendError, sendUpstreamError, upstreamHeaders } from './respond.js';
import { Cancel } from './upstream.js';
import { type CallFacts, usageRecord } from './usage-record.js';

export interface MessagesDeps extends AdmissionDeps {
  readonly ledger: Ledger;
  readonly clock: Clock;
  readonly maxJsonDepth: number;
  readonly attempts: Omit<AttemptDeps, 'onFailedAttempt' | 'now'>;
  readonly newId: () => string;
  /** Told of every usage record and of every request's end (the metrics; see metrics/store.ts). */
  readonly observer: GatewayObserver;
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
  if (!auth.ok) return refuse(deps, req, 'messages', started, null, auth.error);
  if (!deps.ledger.hasCapacity())
    return refuse(deps, req, 'messages', started, auth.value.subject, OVERLOADED);
  const admission = await admitMessage(deps, auth.value, req.body, req.headers, now);
  if (!admission.ok) return refuse(deps, req, 'messages', started, auth.value.subject, admission.error);
  const admitted = admission.value;
  /** When the upstream call began and when its answer's last byte arrived (performance.now()). */
  let upstreamFrom = 0;
  let upstreamTo = 0;

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

  // From here on the reservation is settled (or released) and the rate-limit ticket finished exactly
  // once, whatever happens: `finish` is idempotent and the `finally` below calls it on every path.
  let settled = false;
  const finish = (usage: Usage, costed: number) => {
    if (settled) return;
    settled = true;
    const input = usage.inputTokens + usage.cacheWrite5mTokens + usage.cacheWrite1hTokens;
    if (deps.sharedSteps) {
      deps.sharedSteps.finish(
        admitted.reservation,
        costed,
        admitted.ticket,
        deps.clock(),
        input,
        usage.outputTokens,
      );
    } else {
      deps.budgets.settle(admitted.reservation, costed);
      deps.limiter.finish(admitted.ticket, deps.clock(), input, usage.outputTokens);
    }
  };
  /** The request went to the upstream (it may have been billed) and its own record is not written yet. */
  let unrecorded = false;
  /** The worst case is owed: an attempt was sent and never answered (timeout, broken connection). */
  let owed = false;
  let credentialId: string | null = null;
  let startedAt = now;
  // Records of failed attempts (rare): awaited with the answer's own before its last byte.
  let records: Promise<void>[] | null = null;
  const append = (facts: CallFacts) => {
    records ??= [];
    const row = usageRecord(admitted, facts);
    deps.observer.call(admitted.subject, row);
    records.push(deps.ledger.append(row));
  };
  /** A record at the reserved worst case, for a request sent and not answered (or not readably). */
  const worstCase = (id: string, at: number, status: number, outcome: string, credential: string | null) =>
    append({
      id,
      at,
      endpoint: 'messages',
      model: admitted.model,
      credentialId: credential,
      usage: worstCaseUsage(admitted.price, admitted.bound),
      costMicro: admitted.worstCaseMicro,
      price: admitted.price,
      latencyMs: performance.now() - started,
      status,
      outcome,
      upstreamRequestId: null,
      stream: admitted.stream,
      partial: true,
      estimated: true,
      attempts: 1,
    });
  const onFailedAttempt = (a: FailedAttempt) => {
    // Sent, then no answer: the upstream may have processed and billed all of it (never retried).
    if (a.outcome === 'timeout' || a.outcome === 'connection_lost') {
      owed = true;
      worstCase(deps.newId(), a.startedAt, a.status, a.outcome, a.credential.id);
      return;
    }
    append({
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
    });
  };

  try {
    // A client gone before anything was sent: undici sends nothing on an aborted signal, released at 0.
    if (abort?.aborted) return;
    unrecorded = true;
    upstreamFrom = performance.now();
    const result = await callUpstream(attemptDeps(deps.attempts, deps.clock, onFailedAttempt), {
      method: 'POST',
      path: req.url,
      headers: upstreamHeaders(req.headers),
      body: admitted.body,
      candidates: admitted.candidates,
      signal: abort,
      scrub: presentedSecrets(req.headers),
    });

    if (result.kind !== 'success') {
      upstreamTo = performance.now();
      if (result.kind === 'aborted') {
        // The client left while the request was in flight: it may have reached the upstream and been
        // billed, so it is charged the worst case (the `finally` below writes the record).
        return;
      }
      unrecorded = false; // every attempt left its own record (onFailedAttempt)
      if (owed) finish(worstCaseUsage(admitted.price, admitted.bound), admitted.worstCaseMicro);
      else finish(ZERO_USAGE, 0);
      if (records) await Promise.allSettled(records);
      if (result.kind === 'upstream-error') return sendUpstreamError(req.res, result, req.id);
      return sendError(req.res, result.error, req.id);
    }

    const { response, credential, attempts } = result;
    credentialId = credential.id;
    startedAt = result.startedAt;
    const headers = successHeaders(admitted, req.id, response.headers['request-id'], credential.pool);
    const record = (relayed: Relayed) => {
      upstreamTo = performance.now();
      // No usable figures (unreadable, cut off, absurd): the reserved worst case, never an under-count.
      const usage = relayed.usage ?? worstCaseUsage(admitted.price, admitted.bound);
      const cost = relayed.usage === null ? admitted.worstCaseMicro : costMicro(admitted.price, usage);
      finish(usage, cost);
      unrecorded = false;
      const row = usageRecord(admitted, {
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
        outcome: relayed.outcome,
        upstreamRequestId: relayed.upstreamRequestId,
        stream: admitted.stream,
        partial: relayed.partial,
        estimated: relayed.estimated,
        attempts,
      });
      deps.observer.call(admitted.subject, row);
      return deps.ledger.append(row);
    };

    if (admitted.stream && String(response.headers['content-type'] ?? '').startsWith('text/event-stream')) {
      await relayStream(
        response,
        req.res,
        headers,
        clientGone,
        admitted,
        async (relayed) => {
          await record(relayed);
          if (records) await Promise.allSettled(records);
        },
        (bytes) => scrubUpstream(deps.attempts, presentedSecrets(req.headers), credential.secret, bytes),
      );
      return;
    }
    const { relayed, bytes } = await readJson(response, admitted);
    await record(relayed);
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
  } finally {
    if (unrecorded) {
      // Sent and never recorded (the client left mid-flight, or an exception): the worst case.
      unrecorded = false;
      const outcome = abort?.aborted ? 'client_aborted' : 'internal_error';
      worstCase(req.id, startedAt, 0, outcome, credentialId);
      finish(worstCaseUsage(admitted.price, admitted.bound), admitted.worstCaseMicro);
    } else {
      finish(ZERO_USAGE, 0); // nothing was sent (or already settled: then this does nothing)
    }
    if (records) await Promise.allSettled(records);
    const end = performance.now();
    const upstreamMs = upstreamFrom === 0 ? 0 : (upstreamTo === 0 ? end : upstreamTo) - upstreamFrom;
    deps.observer.end(
      'messages',
      req.res.statusCode,
      admitted.subject,
      admitted.model,
      end - started,
      upstreamMs,
      null,
    );
  }
}

const OVERLOADED: GatewayError = {
  status: 503,
  type: 'overloaded_error',
  message: 'Tollgate is overloaded; retry shortly',
};

/** Answers a request Tollgate refuses itself, and tells the observer why. */
export function refuse(
  deps: Pick<MessagesDeps, 'observer'>,
  req: GatewayRequest,
  endpoint: MetricsEndpoint,
  started: number,
  subject: SubjectInfo | null,
  error: GatewayError,
): void {
  sendError(req.res, error, req.id);
  deps.observer.end(
    endpoint,
    error.status,
    subject,
    null,
    performance.now() - started,
    0,
    refusalKind(error),
  );
}

/** The answer's headers, in the request's own rate-limit header object (fresh per request). */
function successHeaders(
  a: Admitted,
  requestId: string,
  upstreamRequestId: string | string[] | undefined,
  source: CredentialSource,
): Record<string, string> {
  const headers = a.rateHeaders;
  headers['x-tollgate-request-id'] = requestId;
  headers['x-tollgate-credential-source'] = source;
  headers['request-id'] = typeof upstreamRequestId === 'string' ? upstreamRequestId : requestId;
  if (a.remainingMicro !== null) headers['x-tollgate-budget-remaining-usd'] = formatUsd(a.remainingMicro);
  return headers;
}

export type { GatewayError };
