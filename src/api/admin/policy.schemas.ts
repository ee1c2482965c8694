// The policy fields shared by `keys.issue` and `profiles.create`: how the API reads them (lists as JSON
// arrays checked by the CLI's rules, USD as decimal strings, durations as "90d") and how it writes them.
import { z } from 'zod/v4';
import { checkList, KEY_SCOPES, MODEL_ID, TOOL_NAME } from '../../keys/key-policy.js';
import type { ProfilePolicy } from '../../keys/profile.service.js';
import { formatDuration, parseDuration } from '../../lib/duration.js';
import { AppError } from '../../lib/errors.js';
import { ENVIRONMENTS } from '../../vault/credential.service.js';
import { usdOrNone, usdOrNull } from '../schemas.js';

/** A list of names, deduplicated and checked like `--models a,b` / `--tools t1,t2`. */
function nameList(pattern: RegExp, what: string) {
  return z
    .array(z.string().max(200))
    .max(1000)
    .transform((items, ctx) => {
      const checked = checkList(items, pattern);
      if (Array.isArray(checked)) return checked;
      ctx.addIssue({ code: 'custom', message: checked.problem });
      return z.NEVER;
    })
    .meta({ description: `${what}; null = no restriction` });
}

const scopeList = z
  .array(z.enum(KEY_SCOPES))
  .min(1, 'must name at least one scope')
  .max(KEY_SCOPES.length * 4)
  .transform((items) => [...new Set(items)])
  .meta({ description: `scopes of the key (${KEY_SCOPES.join(', ')}); default inference` });

/** The largest value of a count option (`parsePositiveInt`'s bound). */
const MAX_COUNT = 1_000_000_000;
const count = (what: string) =>
  z
    .number()
    .int()
    .min(1)
    .max(MAX_COUNT)
    .nullable()
    .meta({ description: `${what}; null = no limit` });

/** A lifetime such as "90d" or "24h" → milliseconds. */
export const durationInput = z
  .string()
  .max(40)
  .transform((text, ctx) => {
    try {
      return parseDuration(text, 'the duration');
    } catch (error) {
      ctx.addIssue({
        code: 'custom',
        message: error instanceof AppError ? error.message : 'not a duration such as 90d or 24h',
      });
      return z.NEVER;
    }
  })
  .meta({ description: 'a duration: a whole number and a unit w, d, h, m or s, e.g. 90d or 24h' });

export const policyInput = {
  models: nameList(MODEL_ID, 'allowed model ids (bare or dated)').nullable().optional(),
  tools: nameList(TOOL_NAME, 'allowed tool names').nullable().optional(),
  max_tokens: count('largest max_tokens a request may ask for').optional(),
  monthly_budget_usd: usdOrNone.optional(),
  daily_budget_usd: usdOrNone.optional(),
  max_cost_per_request_usd: usdOrNone.optional(),
  rpm: count('requests per rolling minute').optional(),
  tpm: count('input tokens per minute').optional(),
  output_tpm: count('output tokens per minute').optional(),
  concurrency: count('requests in flight at once').optional(),
  expires: durationInput.nullable().optional(),
  env: z.enum(ENVIRONMENTS).nullable().optional(),
  scopes: scopeList.optional(),
};

const policyInputObject = z.object(policyInput);
export type PolicyInput = z.output<typeof policyInputObject>;

/** The policy values a request gave (a field left out stays out: it neither sets nor clears). */
export function policyFromInput(input: PolicyInput): Partial<ProfilePolicy> {
  const out: Partial<ProfilePolicy> = {};
  if (input.models !== undefined) out.models = input.models;
  if (input.tools !== undefined) out.tools = input.tools;
  if (input.max_tokens !== undefined) out.maxTokens = input.max_tokens;
  if (input.monthly_budget_usd !== undefined) out.monthlyBudgetMicro = input.monthly_budget_usd;
  if (input.daily_budget_usd !== undefined) out.dailyBudgetMicro = input.daily_budget_usd;
  if (input.max_cost_per_request_usd !== undefined)
    out.maxCostPerRequestMicro = input.max_cost_per_request_usd;
  if (input.rpm !== undefined) out.rpm = input.rpm;
  if (input.tpm !== undefined) out.inputTpm = input.tpm;
  if (input.output_tpm !== undefined) out.outputTpm = input.output_tpm;
  if (input.concurrency !== undefined) out.concurrency = input.concurrency;
  if (input.expires !== undefined) out.expiresInMs = input.expires;
  if (input.env !== undefined) out.environment = input.env;
  if (input.scopes !== undefined) out.scopes = input.scopes;
  return out;
}

/** A whole profile policy in answers, with the field names `keys.issue` takes. */
export const policyOutput = {
  models: z.array(z.string()).nullable(),
  tools: z.array(z.string()).nullable(),
  max_tokens: z.number().int().nullable(),
  monthly_budget_usd: z.string().nullable(),
  daily_budget_usd: z.string().nullable(),
  max_cost_per_request_usd: z.string().nullable(),
  rpm: z.number().int().nullable(),
  tpm: z.number().int().nullable(),
  output_tpm: z.number().int().nullable(),
  concurrency: z.number().int().nullable(),
  expires: z.string().nullable().meta({ description: 'lifetime of keys issued with it, e.g. 90d' }),
  env: z.enum(ENVIRONMENTS).nullable(),
  scopes: z.array(z.enum(KEY_SCOPES)),
};

export function policyJson(p: ProfilePolicy) {
  return {
    models: p.models,
    tools: p.tools,
    max_tokens: p.maxTokens,
    monthly_budget_usd: usdOrNull(p.monthlyBudgetMicro),
    daily_budget_usd: usdOrNull(p.dailyBudgetMicro),
    max_cost_per_request_usd: usdOrNull(p.maxCostPerRequestMicro),
    rpm: p.rpm,
    tpm: p.inputTpm,
    output_tpm: p.outputTpm,
    concurrency: p.concurrency,
    expires: p.expiresInMs === null ? null : formatDuration(p.expiresInMs),
    env: p.environment,
    scopes: p.scopes,
  };
}
