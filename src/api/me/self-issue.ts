// Issuing a key to oneself: the person's ceiling (their key_ceiling profile, or the default), their
// own monthly budget and the installation's key age limit bound it; at most 20 active keys each.

import type { Environment } from '../../db/schema.js';
import type { IssuedKey } from '../../keys/key.service.js';
import type { KeyScope } from '../../keys/key-policy.js';
import {
  type Ceiling,
  defaultCeiling,
  MAX_ACTIVE_KEYS_PER_PERSON,
  withinCeiling,
} from '../../keys/self-issue.js';
import { AppError } from '../../lib/errors.js';
import type { OpContext } from '../operation.js';
import type { Member } from './member.js';

const DAY_MS = 86_400_000;

export interface SelfIssueBody {
  name?: string | undefined;
  models?: string[] | undefined;
  tools?: string[] | undefined;
  max_tokens?: number | undefined;
  max_cost_per_request_usd?: number | undefined;
  monthly_budget_usd?: number | undefined;
  daily_budget_usd?: number | undefined;
  expires?: number | undefined;
  environment?: Environment | undefined;
  scopes?: KeyScope[] | undefined;
}

export async function issueOwnKey(ctx: OpContext, member: Member, body: SelfIssueBody): Promise<IssuedKey> {
  const row = await ctx.services.users.get(member.userId);
  const profile = row.key_ceiling === null ? null : await ctx.services.profiles.show(row.key_ceiling);
  const ceiling: Ceiling =
    profile === null
      ? defaultCeiling(ctx.config.claude.models_allowed)
      : { label: `profile ${profile.name}`, policy: profile.policy };
  const active = (await ctx.services.keys.list({ user: row.id })).filter((k) => k.status === 'active');
  if (active.length >= MAX_ACTIVE_KEYS_PER_PERSON)
    throw new AppError(
      'forbidden',
      `you already hold ${active.length} active keys, the most a person may; revoke one first`,
    );
  const me = await ctx.services.users.show(row.id);
  const { policy, expiresInMs } = withinCeiling(
    {
      models: body.models,
      tools: body.tools,
      maxTokens: body.max_tokens,
      maxCostPerRequestMicro: body.max_cost_per_request_usd,
      monthlyBudgetMicro: body.monthly_budget_usd,
      dailyBudgetMicro: body.daily_budget_usd,
      expiresInMs: body.expires,
      environment: body.environment,
      scopes: body.scopes,
    },
    ceiling,
    {
      userMonthlyMicro: me.monthlyBudgetMicro,
      maxAgeMs: ctx.config.security.key_max_age_days * DAY_MS,
    },
  );
  return ctx.services.keys.issue(
    { actor: `user:${row.name}` },
    {
      user: row.id,
      name: body.name ?? null,
      policy,
      expiresInMs,
      profile: profile?.name ?? null,
    },
  );
}
