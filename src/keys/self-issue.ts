// The rule of keys a person issues themselves from a dashboard session: every value asked must lie
// within their key ceiling (an admin-chosen profile, or the default one), and a value left out takes
// the ceiling's, so a self-issued key is never broader than its ceiling. Pure: no I/O, no clock.
import type { Environment } from '../db/schema.js';
import { formatDuration } from '../lib/duration.js';
import { AppError } from '../lib/errors.js';
import { formatUsd } from '../lib/money.js';
import { bareModelId } from '../pricing/models.js';
import { DEFAULT_POLICY } from './key.service.js';
import type { KeyPolicy, KeyScope } from './key-policy.js';
import type { ProfilePolicy } from './profile.service.js';

/** At most this many active keys per person (self-issued or not): a session cannot mint without end. */
export const MAX_ACTIVE_KEYS_PER_PERSON = 20;

export interface Ceiling {
  /** How refusals name it: `profile NAME` or `the default ceiling`. */
  readonly label: string;
  readonly policy: Readonly<ProfilePolicy>;
}

/** What a person asked for; a field left out inherits the ceiling's value. */
export interface SelfIssueAsk {
  models?: string[] | undefined;
  tools?: string[] | undefined;
  maxTokens?: number | undefined;
  maxCostPerRequestMicro?: number | undefined;
  monthlyBudgetMicro?: number | undefined;
  dailyBudgetMicro?: number | undefined;
  expiresInMs?: number | undefined;
  environment?: Environment | undefined;
  scopes?: KeyScope[] | undefined;
}

export interface SelfIssueLimits {
  /** The person's own monthly user budget, or null when they have none. */
  readonly userMonthlyMicro: number | null;
  /** security.key_max_age_days in milliseconds. */
  readonly maxAgeMs: number;
}

/** Scopes a person may ever give themselves (act-for-users is for service accounts, issued by admins). */
const SELF_SCOPES: readonly KeyScope[] = ['inference', 'self-service'];

/** The ceiling of a person without one set: inference and self-service, the installation's models. */
export function defaultCeiling(modelsAllowed: readonly string[]): Ceiling {
  return {
    label: 'the default ceiling',
    policy: {
      ...DEFAULT_POLICY,
      models: modelsAllowed.length === 0 ? null : [...modelsAllowed],
      scopes: [...SELF_SCOPES],
      expiresInMs: null,
    },
  };
}

/** The policy and lifetime of the key, or a 403 naming the first field beyond the ceiling. */
export function withinCeiling(
  ask: SelfIssueAsk,
  ceiling: Ceiling,
  limits: SelfIssueLimits,
): { policy: KeyPolicy; expiresInMs: number } {
  const c = ceiling.policy;
  const refuse = (field: string, ceilingValue: string) =>
    new AppError('forbidden', `${field} is beyond your key ceiling (${ceiling.label}: ${ceilingValue})`, {
      field,
    });

  const scopes = pickScopes(ask.scopes, c.scopes, refuse);
  const models = pickSubset(ask.models, c.models, bareModelId, () => refuse('models', listText(c.models)));
  const tools = pickSubset(
    ask.tools,
    c.tools,
    (t) => t,
    () => refuse('tools', listText(c.tools)),
  );
  const maxTokens = pickAtMost(ask.maxTokens, c.maxTokens, () => refuse('max_tokens', String(c.maxTokens)));
  const maxCost = pickAtMost(ask.maxCostPerRequestMicro, c.maxCostPerRequestMicro, () =>
    refuse('max_cost_per_request_usd', usdText(c.maxCostPerRequestMicro)),
  );
  const monthly = pickBudget(
    'monthly_budget_usd',
    ask.monthlyBudgetMicro,
    c.monthlyBudgetMicro,
    limits,
    refuse,
  );
  const daily = pickBudget('daily_budget_usd', ask.dailyBudgetMicro, c.dailyBudgetMicro, limits, refuse);
  if (ask.environment !== undefined && c.environment !== null && ask.environment !== c.environment)
    throw refuse('environment', c.environment);
  const maxLife = Math.min(limits.maxAgeMs, c.expiresInMs ?? limits.maxAgeMs);
  if (ask.expiresInMs !== undefined && ask.expiresInMs > maxLife)
    throw refuse('expires', formatDuration(maxLife));

  return {
    policy: {
      models,
      tools,
      maxTokens,
      maxCostPerRequestMicro: maxCost,
      monthlyBudgetMicro: monthly,
      dailyBudgetMicro: daily,
      rpm: c.rpm,
      inputTpm: c.inputTpm,
      outputTpm: c.outputTpm,
      concurrency: c.concurrency,
      environment: ask.environment ?? c.environment,
      scopes,
    },
    expiresInMs: ask.expiresInMs ?? maxLife,
  };
}

type Refuse = (field: string, ceilingValue: string) => AppError;

function pickScopes(asked: KeyScope[] | undefined, ceiling: readonly KeyScope[], refuse: Refuse): KeyScope[] {
  const allowed = ceiling.filter((s) => SELF_SCOPES.includes(s));
  if (asked === undefined) {
    if (allowed.length === 0) throw refuse('scopes', 'no scope a person may hold');
    return allowed;
  }
  if (asked.includes('act-for-users'))
    throw new AppError(
      'forbidden',
      'scopes: act-for-users is never self-issued (it is for service accounts)',
      {
        field: 'scopes',
      },
    );
  if (asked.some((s) => !allowed.includes(s))) throw refuse('scopes', allowed.join(', ') || 'none');
  return [...asked];
}

/** The asked list when within the ceiling's (null = no restriction), else the ceiling's own. */
function pickSubset(
  asked: string[] | undefined,
  ceiling: readonly string[] | null,
  norm: (s: string) => string,
  refusal: () => AppError,
): string[] | null {
  if (asked === undefined) return ceiling === null ? null : [...ceiling];
  if (ceiling === null) return asked;
  const allowed = new Set(ceiling.map(norm));
  if (asked.some((a) => !allowed.has(norm(a)))) throw refusal();
  return asked;
}

function pickAtMost(
  asked: number | undefined,
  ceiling: number | null,
  refusal: () => AppError,
): number | null {
  if (asked === undefined) return ceiling;
  if (ceiling !== null && asked > ceiling) throw refusal();
  return asked;
}

function pickBudget(
  field: string,
  asked: number | undefined,
  ceiling: number | null,
  limits: SelfIssueLimits,
  refuse: Refuse,
): number | null {
  if (asked === undefined) return ceiling;
  if (ceiling !== null && asked > ceiling) throw refuse(field, usdText(ceiling));
  if (limits.userMonthlyMicro !== null && asked > limits.userMonthlyMicro)
    throw new AppError(
      'forbidden',
      `${field} is above your own monthly budget (${usdText(limits.userMonthlyMicro)})`,
      { field },
    );
  return asked;
}

function listText(list: readonly string[] | null): string {
  return list === null ? 'any' : list.join(', ');
}

function usdText(micro: number | null): string {
  return micro === null ? 'no limit' : `$${formatUsd(micro)}`;
}
