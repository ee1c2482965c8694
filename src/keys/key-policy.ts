// The policy a gateway key carries, validated when the key is issued (enforced by the gateway).
import type { Environment } from '../db/schema.js';
import { AppError } from '../lib/errors.js';
import { bareModelId } from '../pricing/models.js';

export const KEY_SCOPES = ['inference', 'self-service', 'act-for-users'] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

export interface KeyPolicy {
  /** Allowed model ids (bare or dated forms); null = every model the installation allows. */
  models: string[] | null;
  /** Allowed tool names; null = any tool. */
  tools: string[] | null;
  maxTokens: number | null;
  maxCostPerRequestMicro: number | null;
  monthlyBudgetMicro: number | null;
  dailyBudgetMicro: number | null;
  rpm: number | null;
  inputTpm: number | null;
  outputTpm: number | null;
  concurrency: number | null;
  environment: Environment | null;
  scopes: KeyScope[];
}

export const MODEL_ID = /^[a-z0-9][a-z0-9.\-:@]{0,99}$/;
export const TOOL_NAME = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Unique, trimmed, validated entries of a list, or what is wrong with it (a message without its
 * subject, so the CLI can name its option and the API its field).
 */
export function checkList(entries: readonly string[], pattern: RegExp): string[] | { problem: string } {
  const items = [...new Set(entries.map((s) => s.trim()).filter((s) => s.length > 0))];
  if (items.length === 0) return { problem: 'must name at least one entry' };
  const bad = items.find((item) => !pattern.test(item));
  if (bad !== undefined) return { problem: `${JSON.stringify(bad.slice(0, 60))} is not a valid name` };
  return items;
}

/** Normalises a comma-separated list option into unique, validated entries. */
export function parseList(what: string, text: string, pattern: RegExp): string[] {
  const checked = checkList(text.split(','), pattern);
  if (Array.isArray(checked)) return checked;
  const sep = checked.problem.startsWith('must ') ? ' ' : ': ';
  throw new AppError('invalid_input', `${what}${sep}${checked.problem}`);
}

export const parseModels = (text: string) => parseList('--models', text, MODEL_ID);
export const parseTools = (text: string) => parseList('--tools', text, TOOL_NAME);

/** A scope name, or null when it is none of KEY_SCOPES. */
export function scopeOf(text: string): KeyScope | null {
  return KEY_SCOPES.find((k) => k === text) ?? null;
}

export function parseScopes(text: string): KeyScope[] {
  const items = parseList('--scopes', text, /^[a-z-]+$/);
  return items.map((s) => {
    const scope = scopeOf(s);
    if (!scope)
      throw new AppError('invalid_input', `--scopes: unknown scope ${s} (use ${KEY_SCOPES.join(', ')})`);
    return scope;
  });
}

/** Cross-field checks of a policy against the owner and the installation's model list. */
export function checkPolicy(
  policy: KeyPolicy,
  ctx: { userRole: string; modelsAllowed: readonly string[] },
): void {
  if (policy.scopes.includes('act-for-users') && ctx.userRole !== 'service') {
    throw new AppError(
      'forbidden',
      'scope act-for-users is only for service accounts (users with role service)',
    );
  }
  if (policy.models && ctx.modelsAllowed.length > 0) {
    const allowed = new Set(ctx.modelsAllowed.map(bareModelId));
    const outside = policy.models.filter((m) => !allowed.has(bareModelId(m)));
    if (outside.length > 0) {
      throw new AppError(
        'invalid_input',
        `models not allowed in this installation (claude.models_allowed): ${outside.join(', ')}`,
      );
    }
  }
  if (
    policy.dailyBudgetMicro !== null &&
    policy.monthlyBudgetMicro !== null &&
    policy.dailyBudgetMicro > policy.monthlyBudgetMicro
  ) {
    throw new AppError('invalid_input', 'the daily budget is larger than the monthly budget');
  }
}

export function encodeList(list: readonly string[] | null): string | null {
  return list === null ? null : JSON.stringify(list);
}

export function decodeList(text: string | null): string[] | null {
  if (text === null) return null;
  const parsed: unknown = JSON.parse(text);
  return Array.isArray(parsed) ? parsed.filter((x): x is string => typeof x === 'string') : null;
}
