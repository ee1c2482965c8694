// Rate-limit and budget refusals, worded and headed so clients (and the official SDK) do the right thing.
import type { BudgetRefusal } from '../budgets/budget-book.js';
import { formatUsd } from '../lib/money.js';
import type { AdmitResult } from '../ratelimit/limiter.js';
import type { GatewayError } from './anthropic-errors.js';

const LIMIT_NAMES = {
  requests: 'requests per minute',
  'input-tokens': 'input tokens per minute',
  'output-tokens': 'output tokens per minute',
  concurrency: 'concurrent requests',
} as const;

/** A gateway rate limit: 429 with retry-after, so the SDK waits and retries. */
export function rateRefusal(result: Extract<AdmitResult, { ok: false }>): GatewayError {
  return {
    status: 429,
    type: 'rate_limit_error',
    message: `this key's limit of ${LIMIT_NAMES[result.kind]} was reached; retry after ${result.retryAfterS} s`,
    headers: { ...result.headers, 'retry-after': String(result.retryAfterS) },
  };
}

/** A budget refusal: 429 that must not be retried (it will not pass until the period resets). */
export function budgetRefusal(r: BudgetRefusal): GatewayError {
  const period = r.period === 'total' ? 'total' : r.period === 'day' ? 'daily' : 'monthly';
  const resets =
    r.resetsAt === null ? 'it does not reset' : `it resets at ${new Date(r.resetsAt).toISOString()}`;
  return {
    status: 429,
    type: 'rate_limit_error',
    message: `the ${period} budget of ${r.label} ($${formatUsd(r.limitMicro)}) cannot cover this request ($${formatUsd(r.usedMicro)} spent or reserved); ${resets}`,
    headers: { 'x-should-retry': 'false' },
    details: { error_code: 'enforced_spend_limit_reached', scope: r.scope, period: r.period },
  };
}
