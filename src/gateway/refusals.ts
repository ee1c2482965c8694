// Rate-limit and budget refusals, worded and headed so clients (and the official SDK) do the right thing.
import type { BudgetRefusal, BudgetsUnavailable } from '../budgets/budget-book.js';
import { formatUsd } from '../lib/money.js';
import type { RateRefusal } from '../ratelimit/rate-limiter.js';
import type { GatewayError } from './anthropic-errors.js';
import type { SubjectInfo } from './key-cache.js';

const LIMIT_NAMES = {
  requests: 'requests per minute',
  'input-tokens': 'input tokens per minute',
  'output-tokens': 'output tokens per minute',
  concurrency: 'concurrent requests',
} as const;

/**
 * Shared rate limits that cannot be checked (Redis unreachable): refused, not waved through — a 503 the
 * SDK retries after a second.
 */
const RATE_LIMITS_UNAVAILABLE: GatewayError = {
  status: 503,
  type: 'api_error',
  message:
    'rate limits cannot be checked: the shared Redis (redis.url) is unreachable; the request was not sent, retry shortly',
  headers: { 'retry-after': '1' },
  details: { error_code: 'redis_unavailable' },
};

/** A gateway rate limit: 429 with retry-after, so the SDK waits and retries. */
export function rateRefusal(result: RateRefusal): GatewayError {
  if (result.kind === 'unavailable') return RATE_LIMITS_UNAVAILABLE;
  return {
    status: 429,
    type: 'rate_limit_error',
    message: `this key's limit of ${LIMIT_NAMES[result.kind]} was reached; retry after ${result.retryAfterS} s`,
    headers: { ...result.headers, 'retry-after': String(result.retryAfterS) },
  };
}

/**
 * Whether `viewer` (the key's owner) may see a refused budget's spent amount and limit (product.md §6):
 * admins see every scope; a member or service only its own key's and its own user budget. Team and
 * org figures are for admins; others see what remains.
 */
export function seesSpendOf(r: BudgetRefusal, viewer: SubjectInfo): boolean {
  if (viewer.role === 'admin') return true;
  if (r.scope === 'key') return true;
  return r.scope === 'user' && r.id === viewer.userId;
}

/** A budget refusal: 429 that must not be retried (it will not pass until the period resets). */
export function budgetRefusal(r: BudgetRefusal, viewer: SubjectInfo): GatewayError {
  const period = r.period === 'total' ? 'total' : r.period === 'day' ? 'daily' : 'monthly';
  const resets =
    r.resetsAt === null ? 'it does not reset' : `it resets at ${new Date(r.resetsAt).toISOString()}`;
  const figures = seesSpendOf(r, viewer)
    ? ` ($${formatUsd(r.limitMicro)}) cannot cover this request ($${formatUsd(r.usedMicro)} spent or reserved)`
    : ` cannot cover this request ($${formatUsd(Math.max(0, r.limitMicro - r.usedMicro))} remaining)`;
  return {
    status: 429,
    type: 'rate_limit_error',
    message: `the ${period} budget of ${r.label}${figures}; ${resets}`,
    headers: { 'x-should-retry': 'false' },
    details: { error_code: 'enforced_spend_limit_reached', scope: r.scope, period: r.period },
  };
}

/**
 * Budgets cannot be checked (the shared store is unreachable or rebuilding): 503, failing closed —
 * nothing is forwarded that no budget could stop.
 */
export function budgetsUnavailable(u: BudgetsUnavailable): GatewayError {
  return {
    status: 503,
    type: 'api_error',
    message: u.message,
    headers: u.retryAfterS === null ? {} : { 'retry-after': String(u.retryAfterS) },
    details: { error_code: 'budgets_unavailable' },
  };
}
