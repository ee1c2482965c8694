// `coder bootstrap`: onboard one coder for Claude Code. Creates the user if missing, keeps or issues the
// `claude-code` gateway key, stores it in the person's key store and merges the project settings — or,
// with --enroll, creates a one-time code the coder redeems on their own machine.
import type { Config } from '../config/load.js';
import { gatewayKeyHint } from '../crypto/gateway-key.js';
import type { Actor } from '../install/context.js';
import { AppError } from '../lib/errors.js';
import { formatUsd } from '../lib/money.js';
import { validateName } from '../lib/validate.js';
import { bareModelId, type PriceBook } from '../pricing/models.js';
import type { CoderService } from './coder.service.js';
import { assertPerson } from './coder.service.js';
import { unifiedDiff } from './diff.js';
import type { EnrollmentService } from './enrollment.service.js';
import { shellQuote } from './helper-command.js';
import type { KeyStore, SaveResult } from './key-store.js';
import {
  planSettings,
  projectSettingsFile,
  type SettingsPlan,
  settingsFor,
  writeSettings,
} from './settings-file.js';

export interface BootstrapInput {
  readonly name: string;
  readonly projectDir: string;
  /** --monthly-budget; undefined = claude.per_coder_monthly_limit_usd. */
  readonly monthlyBudgetMicro?: number;
  readonly model?: string;
  readonly team?: string;
  readonly enroll: boolean;
  readonly dryRun: boolean;
}

export interface BootstrapDeps {
  readonly config: Config;
  readonly coders: CoderService;
  readonly enrollment: EnrollmentService;
  readonly store: KeyStore;
  readonly prices: PriceBook;
  readonly actor: Actor;
  /** process.execPath: the node that runs the key helper. */
  readonly nodePath: string;
  /** The model when --model is not given (see effectiveDefaultModel). */
  readonly defaultModel: string;
}

export interface BootstrapReport {
  readonly dryRun: boolean;
  readonly user: {
    name: string;
    id: string | null;
    created: boolean;
    team: string | null;
    monthlyBudgetMicro: number | null;
  };
  readonly orgCapMicro: number | null;
  readonly model: string;
  readonly key?: {
    action: 'kept' | 'issued';
    id: string | null;
    hint: string | null;
    /** Where the key is (or would be) kept. */
    store: SaveResult | { where: 'planned'; location: string };
  };
  readonly settings?: {
    file: string;
    created: boolean;
    changed: boolean;
    diff: string;
    warnings: readonly string[];
  };
  readonly enrollment?: { code: string | null; expiresAt: number | null; command: string };
  readonly notes: readonly string[];
}

/** Refuses a model the gateway would refuse: unpriced, or outside claude.models_allowed. */
export function checkModel(model: string, config: Config, prices: PriceBook): string {
  if (prices.lookup(model) === null)
    throw new AppError('invalid_input', `model ${model} has no price; add it under pricing: in tollgate.yml`);
  const allowed = config.claude.models_allowed;
  if (allowed.length > 0 && !allowed.some((m) => bareModelId(m) === bareModelId(model)))
    throw new AppError(
      'invalid_input',
      `model ${model} is not in claude.models_allowed (${allowed.join(', ')})`,
    );
  return model;
}

export async function bootstrapCoder(deps: BootstrapDeps, input: BootstrapInput): Promise<BootstrapReport> {
  const { config, coders } = deps;
  const name = validateName('user', input.name);
  const model = checkModel(input.model ?? deps.defaultModel, config, deps.prices);
  const cap = config.claude.max_monthly_spend_micro;
  const budget = input.monthlyBudgetMicro ?? config.claude.per_coder_monthly_limit_micro;
  if (cap !== null && budget !== null && budget > cap) {
    throw new AppError(
      'invalid_input',
      `a monthly budget of $${formatUsd(budget)} is above the org cap claude.max_monthly_spend_usd ($${formatUsd(cap)})`,
    );
  }
  const notes: string[] = [];
  const existing = await coders.findUser(name);
  if (existing) {
    assertPerson(existing);
    if (input.monthlyBudgetMicro !== undefined || input.team !== undefined)
      notes.push(
        `${name} already exists; --monthly-budget and --team apply only to new users and were not changed`,
      );
  }

  // Read and merge the settings before changing anything, so a broken file stops the whole command.
  const plan = input.enroll
    ? null
    : await planSettings(
        projectSettingsFile(input.projectDir),
        settingsFor({
          baseUrl: config.server.public_url,
          profile: name,
          model,
          deny: config.claude_code.deny,
          nodePath: deps.nodePath,
        }),
      );

  if (input.dryRun) return dryRunReport(deps, { name, model, budget, existing, plan, notes, input });

  const { user, created } = await coders.ensureUser(deps.actor, {
    name,
    team: input.team ?? null,
    monthlyBudgetMicro: budget,
  });
  const userPart = {
    name: user.name,
    id: user.id,
    created,
    team: user.team,
    monthlyBudgetMicro: user.monthlyBudgetMicro,
  };

  if (input.enroll) {
    const issued = await deps.enrollment.create(deps.actor, { userId: user.id, model });
    notes.push(...enrollNotes(config));
    return {
      dryRun: false,
      user: userPart,
      orgCapMicro: cap,
      model,
      enrollment: {
        code: issued.code,
        expiresAt: issued.expiresAt,
        command: setupCommand(config, issued.code),
      },
      notes,
    };
  }

  const key = await keepOrIssueKey(deps, user.id, user.name, input.projectDir);
  if (plan) await writeSettings(plan);
  return {
    dryRun: false,
    user: userPart,
    orgCapMicro: cap,
    model,
    key,
    ...(plan ? { settings: settingsReport(plan) } : {}),
    notes: [...notes, ...(plan?.warnings ?? [])],
  };
}

/** The stored key is kept when it is still an active key of this user; otherwise a new one is issued. */
async function keepOrIssueKey(
  deps: BootstrapDeps,
  userId: string,
  profile: string,
  projectDir: string,
): Promise<NonNullable<BootstrapReport['key']>> {
  const stored = await deps.store.load(profile).catch(() => null);
  const keptId = stored ? await deps.coders.activeKeyId(userId, stored.key) : null;
  if (stored && keptId) {
    return {
      action: 'kept',
      id: keptId,
      hint: gatewayKeyHint(stored.key),
      store: { where: stored.where, location: stored.location },
    };
  }
  const issued = await deps.coders.issueKey(deps.actor, userId);
  try {
    const saved = await deps.store.save(profile, issued.key, projectDir);
    return { action: 'issued', id: issued.id, hint: issued.hint, store: saved };
  } catch (error) {
    // A key nobody holds is useless and should not stay active.
    await deps.coders.revokeKey(deps.actor, issued.id).catch(() => undefined);
    throw error;
  }
}

async function dryRunReport(
  deps: BootstrapDeps,
  p: {
    name: string;
    model: string;
    budget: number | null;
    existing: Awaited<ReturnType<CoderService['findUser']>>;
    plan: SettingsPlan | null;
    notes: string[];
    input: BootstrapInput;
  },
): Promise<BootstrapReport> {
  const existing = p.existing ? await deps.coders.showUser(p.existing.id) : null;
  const stored = existing ? await deps.store.load(p.name).catch(() => null) : null;
  const keptId = stored && existing ? await deps.coders.activeKeyId(existing.id, stored.key) : null;
  const user = existing
    ? {
        name: existing.name,
        id: existing.id,
        created: false,
        team: existing.team,
        monthlyBudgetMicro: existing.monthlyBudgetMicro,
      }
    : { name: p.name, id: null, created: true, team: p.input.team ?? null, monthlyBudgetMicro: p.budget };
  const base = {
    dryRun: true,
    user,
    orgCapMicro: deps.config.claude.max_monthly_spend_micro,
    model: p.model,
  };
  if (p.input.enroll) {
    return {
      ...base,
      enrollment: { code: null, expiresAt: null, command: setupCommand(deps.config, 'ENR-…') },
      notes: [...p.notes, ...enrollNotes(deps.config)],
    };
  }
  return {
    ...base,
    key:
      stored && keptId
        ? {
            action: 'kept',
            id: keptId,
            hint: gatewayKeyHint(stored.key),
            store: { where: stored.where, location: stored.location },
          }
        : {
            action: 'issued',
            id: null,
            hint: null,
            store: { where: 'planned', location: deps.store.describe(p.name) },
          },
    ...(p.plan ? { settings: settingsReport(p.plan) } : {}),
    notes: [...p.notes, ...(p.plan?.warnings ?? [])],
  };
}

function settingsReport(plan: SettingsPlan): NonNullable<BootstrapReport['settings']> {
  return {
    file: plan.file,
    created: plan.before === null,
    changed: plan.changed,
    diff: unifiedDiff(plan.before ?? '', plan.after, {
      from: plan.before === null ? '/dev/null' : plan.file,
      to: plan.file,
    }),
    warnings: plan.warnings,
  };
}

/** The command the coder runs on their machine. */
export function setupCommand(config: Config, code: string): string {
  return `tollgate claude-code setup --server ${shellQuote(config.server.public_url)} --code ${code}`;
}

function enrollNotes(config: Config): string[] {
  const url = new URL(config.server.public_url);
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  return url.protocol === 'http:' && !local
    ? [
        `server.public_url is plain http (${config.server.public_url}); claude-code setup refuses plain http to other hosts, so set server.public_url to Tollgate's https URL`,
      ]
    : [];
}
