// A fake Anthropic API over plain node:http, speaking the real wire format, shared by tests and benchmarks.
//
// Request pipeline: route (unknown → 404) → read body (32 MB cap → 413) → auth (401/403) → fault
// (directive → one-shot queue → default; `/v1/*` only) → latencyMs → fault answer or route handler.
// Directives live in the last user message of POST /v1/messages:
//   [[fake output_tokens=N]]  [[fake web_searches=K]]  [[fake web_fetches=K]]
//   [[fake fault=NAME ...]] with NAME one of status (status=, retry_after=, error_code=), a bare code such
//   as 429, reset, hang, midstream-error (after_tokens=), reset-midstream (after_tokens=), slow-stream (delay_ms=).
// `anthropic-beta: fake-unauthorized[-after-MS]` and `fake-echo-key` ask for the tricks of beta-tricks.ts.
// The Admin API's usage and cost reports (reports.ts) are computed from the Messages requests served.
// On non-Messages routes and JSON Messages requests the stream faults degrade: midstream-error → 529,
// slow-stream → the whole answer delayed once; reset-midstream → reset on other routes, and on a JSON
// Messages answer the head and half the body, then a broken connection.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAdminStore } from './admin.js';
import { authorize, createKeyPolicy, type KeyKind, presentedKey } from './auth.js';
import { answerBetaTrick } from './beta-tricks.js';
import { createPromptCache } from './cache.js';
import { CLAUDE_CODE_PATH, createClaudeCodeStore } from './claude-code.js';
import { createExchange, type Exchange } from './exchange.js';
import { createFaultBook, directiveFault, sendStatusFault } from './faults.js';
import { handleCountTokens, handleMessages, isStreamFault, type MessagesDeps } from './messages.js';
import { listModels, resolveModel } from './models.js';
import { parseDirectives } from './prompt.js';
import { createReportStore } from './reports.js';
import { createSpendLimitStore, SPEND_LIMITS_PATH } from './spend-limits.js';
import type { FakeUpstream, FakeUpstreamOptions, Fault, ServedRecord } from './types.js';
import { errorBody, sendError, sendJson } from './wire.js';

export { FAKE_MODELS, resolveModel } from './models.js';
export { countInputTokens } from './prompt.js';
export type * from './types.js';

const MAX_BODY_BYTES = 32 * 1024 * 1024;

type Route = 'root' | 'models' | 'model' | 'org-me' | 'admin' | 'count-tokens' | 'messages';

const NEEDS: Readonly<Record<Exclude<Route, 'root'>, KeyKind>> = {
  models: 'inference',
  model: 'inference',
  'count-tokens': 'inference',
  messages: 'inference',
  'org-me': 'admin',
  admin: 'admin',
};

const ADMIN_PREFIX = '/v1/organizations/';

function route(method: string, path: string): Route | null {
  if (path === '/') return method === 'GET' || method === 'HEAD' ? 'root' : null;
  if (method === 'POST') {
    if (path === '/v1/messages') return 'messages';
    if (path === '/v1/messages/count_tokens') return 'count-tokens';
    if (path.startsWith(ADMIN_PREFIX) && path !== '/v1/organizations/me') return 'admin';
    return null;
  }
  if (method !== 'GET') return null;
  if (path === '/v1/models') return 'models';
  if (path.startsWith('/v1/models/') && path.indexOf('/', 11) < 0) return 'model';
  if (path === '/v1/organizations/me') return 'org-me';
  if (path.startsWith(ADMIN_PREFIX)) return 'admin';
  return null;
}

/** Reads the body as text (events, not async iteration: cheaper), or null beyond the 32 MB request limit. */
function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) resolve(null);
      else
        resolve(
          chunks.length === 1 ? (chunks[0]?.toString('utf8') ?? '') : Buffer.concat(chunks).toString('utf8'),
        );
    });
    req.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function safeDecode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Starts the fake on 127.0.0.1 (random port by default). */
export async function startFakeUpstream(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const now = options.now ?? Date.now;
  const latencyMs = options.latencyMs ?? 0;
  const served: ServedRecord[] = [];
  const faults = createFaultBook();
  const keys = createKeyPolicy(
    options.validKeys ?? [],
    options.adminKeys ?? [],
    options.acceptTestKeys ?? true,
  );
  const admin = createAdminStore(now);
  const reports = createReportStore(served, () => admin.apiKeys(), now);
  const spendLimits = createSpendLimitStore(now);
  const claudeCode = createClaudeCodeStore();
  const deps: MessagesDeps = {
    cache: createPromptCache(now),
    chunkTokens: Math.max(1, options.streamChunkTokens ?? 1),
    defaultOutputTokens: options.defaultOutputTokens ?? 20,
    adversarial: options.adversarialBilling ?? false,
  };
  let counter = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const id = ++counter;
    const requestId = `req_fake_${id}`;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query: Record<string, string> =
      q < 0 ? {} : Object.fromEntries(new URLSearchParams(url.slice(q + 1)));
    const key = presentedKey(req.headers);
    const ex = createExchange(req, res, requestId, path, query, key, now(), served);
    const method = req.method ?? 'GET';
    const which = route(method, path);

    if (which === 'root') {
      ex.settle(200, 'complete');
      sendJson(res, 200, requestId, method === 'HEAD' ? '' : '{"ok":true}');
      return;
    }
    if (which === null) return fail(ex, 404, `${method} ${path} not found`);

    let body: unknown;
    if (method === 'POST') {
      const text = await readBody(req);
      if (text === null) return fail(ex, 413, 'Request exceeds the maximum allowed number of bytes');
      body = parseJson(text);
      if (isObject(body)) {
        if (typeof body.model === 'string') ex.record.model = body.model;
        ex.record.stream = which === 'messages' && body.stream === true;
      }
    }

    const refusal = authorize(keys, key.key, NEEDS[which]);
    if (refusal) return fail(ex, refusal.status, refusal.message);
    const needs = NEEDS[which];
    // A key disabled through the Admin API is refused like a revoked one.
    if (needs === 'inference' && key.key !== null && admin.isDisabled(key.key)) {
      return fail(ex, 401, 'invalid x-api-key');
    }
    if (needs === 'admin' && admin.noAccess) {
      return fail(ex, 403, 'Your API key does not have permission to use the specified resource.');
    }
    // `anthropic-beta: fake-…` values (beta-tricks.ts): a 401 for a valid key, an echo of the key.
    if ((which === 'messages' || which === 'count-tokens') && (await answerBetaTrick(ex, key.key, body)))
      return;

    const directives = which === 'messages' && isObject(body) ? parseDirectives(body) : null;
    const fromDirective = directives?.fault ? directiveFault(directives.fault, directives.params) : null;
    const fault = fromDirective ?? faults.take(key.key, path);

    if (latencyMs > 0 && fault?.kind !== 'hang' && fault?.kind !== 'reset') {
      await sleep(latencyMs);
      if (ex.settled) return;
    }
    if (fault) {
      const handled = await applyFault(ex, fault, which === 'messages');
      if (handled) return;
    }
    const streamFault = fault && isStreamFault(fault) ? fault : null;
    switch (which) {
      case 'messages':
        return handleMessages(ex, body, directives, streamFault, deps, `msg_fake_${id}`);
      case 'count-tokens':
        return handleCountTokens(ex, body);
      case 'models': {
        const result = listModels(query);
        if (!result.ok) return fail(ex, 400, result.message);
        ex.settle(200, 'complete');
        return sendJson(res, 200, requestId, JSON.stringify(result.page));
      }
      case 'model': {
        const modelId = safeDecode(path.slice('/v1/models/'.length));
        const found = modelId === null ? undefined : resolveModel(modelId);
        if (!found) return fail(ex, 404, `model: ${modelId}`);
        ex.settle(200, 'complete');
        return sendJson(res, 200, requestId, JSON.stringify(found));
      }
      case 'admin':
        if (reports.handle(ex, path)) return;
        if (path === SPEND_LIMITS_PATH) return spendLimits.handle(ex, method, query, body);
        if (path === CLAUDE_CODE_PATH && method === 'GET') return claudeCode.handle(ex, query);
        return admin.handle(ex, method, path, query, body);
      case 'org-me':
        ex.settle(200, 'complete');
        return sendJson(
          res,
          200,
          requestId,
          '{"id":"org_fake_0001","type":"organization","name":"Fake Org"}',
        );
    }
  }

  /** Answers status/reset/hang (and stream faults outside streaming Messages); false when the route must run. */
  async function applyFault(ex: Exchange, fault: Fault, isMessages: boolean): Promise<boolean> {
    switch (fault.kind) {
      case 'status':
        ex.settle(fault.status, 'error');
        sendStatusFault(ex.res, fault, ex.requestId, now());
        return true;
      case 'reset':
        ex.settle(0, 'reset');
        ex.req.socket.destroy();
        return true;
      case 'hang':
        // Keep the socket open without answering; close() destroys it.
        ex.settle(0, 'hang');
        return true;
      case 'midstream-error':
      case 'reset-midstream':
      case 'slow-stream':
        if (isMessages) return false;
        if (fault.kind === 'midstream-error') {
          fail(ex, 529, 'Overloaded');
          return true;
        }
        if (fault.kind === 'reset-midstream') return applyFault(ex, { kind: 'reset' }, false);
        await sleep(fault.delayMs);
        return ex.settled;
    }
  }

  function fail(ex: Exchange, status: number, message: string): void {
    ex.settle(status, 'error');
    sendError(ex.res, status, message, ex.requestId);
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => {
      // A bug in the fake must not hang the client: answer 500 if still possible.
      if (res.headersSent || res.destroyed) res.destroy();
      else sendJson(res, 500, 'req_fake_error', errorBody(500, 'Internal server error', 'req_fake_error'));
    });
  };
  const server = options.tls ? createHttpsServer(options.tls, onRequest) : createServer(onRequest);
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;

  return {
    url: `${options.tls ? 'https' : 'http'}://${options.host ?? '127.0.0.1'}:${address.port}`,
    served,
    enqueueFault: (fault, match) => faults.enqueue(fault, match),
    setDefaultFault: (fault) => faults.setDefault(fault),
    revokeKey: (apiKey) => keys.revoke(apiKey),
    admin: {
      addApiKey: (input) => admin.addApiKey(input),
      setMaxPageSize: (size) => admin.setMaxPageSize(size),
      setNoAccess: (on) => admin.setNoAccess(on),
      workspaces: () => admin.workspaces(),
      apiKeys: () => admin.apiKeys(),
    },
    reports: {
      setMaxBuckets: (buckets) => reports.setMaxBuckets(buckets),
      setLagMs: (ms) => reports.setLagMs(ms),
    },
    spendLimits: {
      setNoAccess: (on) => spendLimits.setNoAccess(on),
      setMaxPageSize: (size) => spendLimits.setMaxPageSize(size),
      limits: () => spendLimits.limits(),
      writes: () => spendLimits.writes,
    },
    claudeCode: { add: (record) => claudeCode.add(record), setNoAccess: (on) => claudeCode.setNoAccess(on) },
    reset() {
      admin.reset();
      reports.reset();
      spendLimits.reset();
      claudeCode.reset();
      served.length = 0;
      faults.clear();
      deps.cache.clear();
      keys.clearRevocations();
    },
    async waitForServed(count, timeoutMs = 2_000) {
      const deadline = Date.now() + timeoutMs;
      while (served.length < count) {
        if (Date.now() > deadline)
          throw new Error(`fake upstream served ${served.length} of ${count} requests`);
        await sleep(5);
      }
      return served;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
