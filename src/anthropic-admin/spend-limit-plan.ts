// What Tollgate would set as Anthropic spend limits, and how that differs from what is set (pure).
import type { SpendLimit, SpendLimitScope } from './spend-limits.client.js';

/** One limit Tollgate manages: the org cap, or a mapped team's monthly budget. */
export interface WantedLimit {
  readonly scope: SpendLimitScope;
  /** The team behind a workspace limit (null for the organisation). */
  readonly team: string | null;
  readonly limitMicro: number;
}

/** `unmanaged`: a limit Anthropic has that Tollgate has no budget for (left as it is). */
export type LimitAction = 'create' | 'update' | 'none' | 'unmanaged';

export interface LimitRow {
  readonly scope: SpendLimitScope;
  readonly team: string | null;
  /** What Anthropic has now (integer cents as a string; null = an explicit no-limit), absent = nothing set. */
  readonly current: string | null | undefined;
  readonly currentId: string | null;
  /** What Tollgate would set: its budget in cents, rounded down (null: Tollgate has no budget here). */
  readonly wanted: string | null;
  /** wanted − current in cents (null when there is no current amount to compare). */
  readonly differenceCents: number | null;
  readonly action: LimitAction;
}

const MICRO_PER_CENT = 10_000;

/**
 * Micro-USD to whole cents as Anthropic's decimal string, rounded DOWN so Anthropic's cap never
 * exceeds Tollgate's own.
 */
export function microToCents(micro: number): string {
  if (!Number.isSafeInteger(micro) || micro < 0) throw new RangeError(`not a micro-USD amount: ${micro}`);
  return String(Math.floor(micro / MICRO_PER_CENT));
}

export function scopeKey(scope: SpendLimitScope): string {
  return scope.type === 'organization' ? 'organization' : `workspace:${scope.workspace_id}`;
}

/**
 * Each wanted limit beside Anthropic's current monthly limit of the same scope, then Anthropic's other
 * monthly limits (unmanaged: Tollgate never clears a limit it has no budget for).
 */
export function planLimits(wanted: readonly WantedLimit[], current: readonly SpendLimit[]): LimitRow[] {
  const byScope = new Map<string, SpendLimit>();
  for (const limit of current) if (limit.period === 'monthly') byScope.set(scopeKey(limit.scope), limit);
  const managed = new Set(wanted.map((w) => scopeKey(w.scope)));
  const rows: LimitRow[] = wanted.map((w) => {
    const now = byScope.get(scopeKey(w.scope));
    const cents = microToCents(w.limitMicro);
    const action: LimitAction = now === undefined ? 'create' : now.amount === cents ? 'none' : 'update';
    return {
      scope: w.scope,
      team: w.team,
      current: now === undefined ? undefined : now.amount,
      currentId: now?.id ?? null,
      wanted: cents,
      differenceCents: now?.amount == null ? null : Number(cents) - Number(now.amount),
      action,
    };
  });
  for (const [key, limit] of byScope) {
    if (managed.has(key)) continue;
    rows.push({
      scope: limit.scope,
      team: null,
      current: limit.amount,
      currentId: limit.id,
      wanted: null,
      differenceCents: null,
      action: 'unmanaged',
    });
  }
  return rows;
}
