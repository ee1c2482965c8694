// The fake's spend limits (a beta of the Admin API): `POST /v1/organizations/spend_limits` upserts the
// limit of one (scope, period); `GET /v1/organizations/spend_limits` lists the current ones.
//
// The GET list is Tollgate's reading of the beta (only the upsert and the `/effective` report are
// described publicly): cursor-paged like the other Admin API lists (`limit`/`after_id` → `data,
// first_id, last_id, has_more`), one `spend_limit` object per (scope, period) that has been set.
// Both need `anthropic-beta: spend-limits-2026-01-01`, as Tollgate names the beta. `amount` is an
// integer decimal string in cents, or null (an explicit "no limit").

import { pageOf } from './admin.js';
import type { Exchange } from './exchange.js';
import type { FakeSpendLimit } from './types.js';
import { sendError, sendJson } from './wire.js';

export const SPEND_LIMITS_BETA = 'spend-limits-2026-01-01';
export const SPEND_LIMITS_PATH = '/v1/organizations/spend_limits';

const PERIODS = ['daily', 'weekly', 'monthly'] as const;

export interface SpendLimitStore {
  handle(ex: Exchange, method: string, query: Record<string, string>, body: unknown): void;
  setNoAccess(on: boolean): void;
  setMaxPageSize(size: number): void;
  limits(): FakeSpendLimit[];
  /** Upserts answered with a change (a POST that matched the stored limit is not counted). */
  readonly writes: number;
  reset(): void;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

type Scope = FakeSpendLimit['scope'];

function parseScope(value: unknown): Scope | string {
  if (!isObject(value)) return 'scope: Input should be an object';
  if (value.type === 'organization') return { type: 'organization' };
  if (value.type === 'workspace') {
    const id = value.workspace_id;
    if (typeof id !== 'string' || !/^wrkspc_[A-Za-z0-9_-]+$/.test(id))
      return 'scope.workspace_id: Input should be a workspace id';
    return { type: 'workspace', workspace_id: id };
  }
  return "scope.type: Input should be 'organization' or 'workspace'";
}

const scopeKey = (scope: Scope) => (scope.type === 'organization' ? 'organization' : scope.workspace_id);

export function createSpendLimitStore(now: () => number): SpendLimitStore {
  let limits: FakeSpendLimit[] = [];
  let noAccess = false;
  let maxPageSize = 1000;
  let writes = 0;
  let counter = 0;

  function ok(ex: Exchange, value: unknown): void {
    ex.settle(200, 'complete');
    sendJson(ex.res, 200, ex.requestId, JSON.stringify(value));
  }
  function fail(ex: Exchange, status: number, message: string): void {
    ex.settle(status, 'error');
    sendError(ex.res, status, message, ex.requestId);
  }

  function upsert(ex: Exchange, body: unknown) {
    if (!isObject(body)) return fail(ex, 400, 'body: Input should be an object');
    const amount = body.amount;
    // Integer cents as a decimal string ("50000"), or null; never a number or a fraction.
    if (amount !== null && (typeof amount !== 'string' || !/^(0|[1-9]\d{0,14})$/.test(amount)))
      return fail(ex, 400, 'amount: Input should be an integer number of cents as a string, or null');
    const period = body.period;
    if (typeof period !== 'string' || !(PERIODS as readonly string[]).includes(period))
      return fail(ex, 400, "period: Input should be 'daily', 'weekly' or 'monthly'");
    // Console (API) organisations have monthly organization and workspace limits only.
    if (period !== 'monthly')
      return fail(ex, 400, 'period: only monthly limits can be set for this organization');
    const scope = parseScope(body.scope);
    if (typeof scope === 'string') return fail(ex, 400, scope);
    const existing = limits.find((l) => l.period === period && scopeKey(l.scope) === scopeKey(scope));
    if (existing) {
      if (existing.amount !== amount) {
        existing.amount = amount;
        writes++;
      }
      return ok(ex, existing);
    }
    const limit: FakeSpendLimit = {
      type: 'spend_limit',
      id: `spl_fake${String(++counter).padStart(6, '0')}`,
      amount,
      currency: 'USD',
      period: 'monthly',
      scope,
      is_enabled: true,
      created_at: new Date(now()).toISOString(),
    };
    limits.push(limit);
    writes++;
    return ok(ex, limit);
  }

  return {
    handle(ex, method, query, body) {
      if (!ex.record.headers.anthropicBeta.includes(SPEND_LIMITS_BETA)) {
        return fail(
          ex,
          400,
          `spend_limits is a beta endpoint: send the header anthropic-beta: ${SPEND_LIMITS_BETA}`,
        );
      }
      if (noAccess) {
        return fail(
          ex,
          403,
          'Setting spend limits through the API is an early-access preview your organization does not have access to.',
        );
      }
      if (method === 'POST') return upsert(ex, body);
      const result = pageOf(limits, query, maxPageSize);
      if (!result.ok) return fail(ex, 400, result.message);
      return ok(ex, result.page);
    },
    setNoAccess(on) {
      noAccess = on;
    },
    setMaxPageSize(size) {
      maxPageSize = Math.max(1, Math.floor(size));
    },
    limits: () => limits.map((l) => ({ ...l, scope: { ...l.scope } })),
    get writes() {
      return writes;
    },
    reset() {
      limits = [];
      noAccess = false;
      maxPageSize = 1000;
      writes = 0;
    },
  };
}
