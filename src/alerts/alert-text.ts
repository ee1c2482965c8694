// What an alert says: the condition that makes it unique, the Slack-compatible text and the structured
// fields the webhook receives. Pure.
import type { AlertKind, BudgetPeriod, BudgetScope } from '../db/schema.js';
import { formatUsd } from '../lib/money.js';

/** An alert ready to be recorded (and, with a webhook, sent). */
export interface NewAlert {
  condition: string;
  kind: AlertKind;
  targetType: BudgetScope | 'credential';
  targetId: string;
  message: string;
  /** The structured fields of the webhook body besides `text` and `alert_id`. */
  fields: Record<string, string | number | null>;
}

export interface BudgetCrossing {
  scope: BudgetScope;
  id: string;
  name: string | null;
  /** A key scope's user (the lineage's newest key's); null for other scopes. */
  user?: string | null;
  period: BudgetPeriod;
  periodStart: number;
  threshold: number;
  limitMicro: number;
  spentMicro: number;
}

/** Thresholds reached by `spent` of `limit`, exactly (no floating-point rounding at the boundary). */
export function crossedThresholds(spentMicro: number, limitMicro: number, thresholds: readonly number[]) {
  if (limitMicro <= 0 || spentMicro <= 0) return [];
  const spent = BigInt(spentMicro) * 1_000_000n;
  // A threshold is read in millionths (0.8 → 800000), so spent ≥ t × limit is an integer comparison.
  return thresholds.filter((t) => spent >= BigInt(limitMicro) * BigInt(Math.round(t * 1_000_000)));
}

const PERIOD_WORD: Readonly<Record<BudgetPeriod, string>> = {
  day: 'daily',
  month: 'monthly',
  total: 'all-time',
};

/** The condition of a budget alert: one per scope, period, period start and threshold. */
export function budgetCondition(
  c: Pick<BudgetCrossing, 'scope' | 'id' | 'period' | 'periodStart' | 'threshold'>,
): string {
  return `budget:${c.scope}:${c.id}:${c.period}:${c.periodStart}:${c.threshold}`;
}

export function budgetAlert(c: BudgetCrossing): NewAlert {
  const who = `${scopeLabel(c.scope, c.name ?? c.id)}${c.user ? ` of ${c.user}` : ''}`;
  const pct = Math.round(c.threshold * 100);
  const figures = `$${formatUsd(c.spentMicro)} of $${formatUsd(c.limitMicro)}`;
  const since =
    c.period === 'total' ? '' : `, ${c.period} from ${new Date(c.periodStart).toISOString().slice(0, 10)}`;
  const message =
    c.threshold >= 1
      ? `Tollgate: ${who} has used its whole ${PERIOD_WORD[c.period]} budget (${figures}${since}); requests are refused until it resets or is raised`
      : `Tollgate: ${who} reached ${pct}% of its ${PERIOD_WORD[c.period]} budget (${figures}${since})`;
  return {
    condition: budgetCondition(c),
    kind: 'budget',
    targetType: c.scope,
    targetId: c.id,
    message,
    fields: {
      scope: c.scope,
      id: c.id,
      name: c.name,
      ...(c.scope === 'key' ? { user: c.user ?? null } : {}),
      period: c.period,
      period_start: new Date(c.periodStart).toISOString(),
      threshold: c.threshold,
      limit_usd: formatUsd(c.limitMicro),
      limit_micro_usd: c.limitMicro,
      spent_usd: formatUsd(c.spentMicro),
      spent_micro_usd: c.spentMicro,
    },
  };
}

/** A credential the gateway marked invalid (`markedAt`: when; a later marking is a new alert). */
export function credentialInvalidAlert(c: { id: string; name: string }, markedAt: number): NewAlert {
  return {
    condition: `credential_invalid:${c.id}:${markedAt}`,
    kind: 'credential_invalid',
    targetType: 'credential',
    targetId: c.id,
    message: `Tollgate: credential ${c.name} was marked invalid: Anthropic answered 401 and a validation call confirmed it; rotate or remove it`,
    fields: { scope: 'credential', id: c.id, name: c.name, marked_at: new Date(markedAt).toISOString() },
  };
}

export interface AgedKey {
  id: string;
  name: string | null;
  user: string;
  createdAt: number;
}

export function keyAgeAlert(k: AgedKey, ageDays: number, maxAgeDays: number): NewAlert {
  return {
    condition: `key_age:${k.id}`,
    kind: 'key_age',
    targetType: 'key',
    targetId: k.id,
    message: `Tollgate: gateway key ${k.name ?? k.id} of ${k.user} is ${ageDays} days old (policy: ${maxAgeDays}); rotate it: tollgate key rotate ${k.id} --grace 24h`,
    fields: {
      scope: 'key',
      id: k.id,
      name: k.name,
      user: k.user,
      created_at: new Date(k.createdAt).toISOString(),
      age_days: ageDays,
      max_age_days: maxAgeDays,
    },
  };
}

/** A credential past the age policy, counted from its last rotation (a rotation starts a new age). */
export function credentialAgeAlert(
  c: { id: string; name: string; since: number },
  ageDays: number,
  maxAgeDays: number,
): NewAlert {
  return {
    condition: `credential_age:${c.id}:${c.since}`,
    kind: 'credential_age',
    targetType: 'credential',
    targetId: c.id,
    message: `Tollgate: credential ${c.name} is ${ageDays} days old (policy: ${maxAgeDays}); rotate it: tollgate credential rotate ${c.name}`,
    fields: {
      scope: 'credential',
      id: c.id,
      name: c.name,
      since: new Date(c.since).toISOString(),
      age_days: ageDays,
      max_age_days: maxAgeDays,
    },
  };
}

/** The webhook body: Slack's `text` (with &, <, > escaped as Slack asks) and the structured fields. */
export function webhookBody(alert: NewAlert, id: string, raisedAt: number): string {
  return JSON.stringify({
    text: slackEscape(alert.message),
    alert_id: id,
    kind: alert.kind,
    raised_at: new Date(raisedAt).toISOString(),
    ...alert.fields,
  });
}

function scopeLabel(scope: BudgetScope, name: string): string {
  return scope === 'org' ? 'the organisation' : scope === 'key' ? `gateway key ${name}` : `${scope} ${name}`;
}

function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
