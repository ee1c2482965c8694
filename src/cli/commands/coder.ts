// `tollgate coder bootstrap NAME`: onboard a coder for Claude Code (user, key, key store, settings).
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { type BootstrapReport, bootstrapCoder } from '../../claude-code/bootstrap.js';
import { createCoderService } from '../../claude-code/coder.service.js';
import { effectiveDefaultModel } from '../../claude-code/default-model.js';
import { createEnrollmentService } from '../../claude-code/enrollment.service.js';
import { configDirOf, createKeyStore, keyStoreModeOf, nativeKeychain } from '../../claude-code/key-store.js';
import { systemClock } from '../../lib/clock.js';
import { formatUsd, parseUsd } from '../../lib/money.js';
import { createPriceBook } from '../../pricing/models.js';
import type { Io } from '../io.js';
import { isoTime, printJson, printLines } from '../output.js';
import { withServices } from '../runtime.js';

interface BootstrapOptions {
  project?: string;
  monthlyBudget?: string;
  model?: string;
  team?: string;
  enroll?: boolean;
  dryRun?: boolean;
}

export function coderCommand(io: Io): Command {
  const cmd = new Command('coder').description('onboard coders for Claude Code');

  cmd
    .command('bootstrap <name>')
    .description(
      "create the coder's user and gateway key, keep the key in this machine's keychain and write the project's .claude/settings.json (or, with --enroll, print a one-time code for the coder's own machine)",
    )
    .option(
      '--project <dir>',
      'project whose .claude/settings.json is written (default: the current directory)',
    )
    .option(
      '--monthly-budget <usd>',
      'monthly budget of a new user (default claude.per_coder_monthly_limit_usd)',
    )
    .option('--model <model>', 'model Claude Code uses (default claude.default_model)')
    .option('--team <team>', 'team of a new user')
    .option('--enroll', 'create a one-time enrollment code instead of writing files here')
    .option('--dry-run', 'print what would be created and the settings diff; change nothing')
    .action(async (name: string, opts: BootstrapOptions, command: Command) => {
      const monthlyBudgetMicro =
        opts.monthlyBudget === undefined ? undefined : parseUsd(opts.monthlyBudget, '--monthly-budget');
      const mode = keyStoreModeOf(io.env);
      await withServices(io, command, async ({ services, installation, config, actor, json }) => {
        const ctx = { installation, clock: systemClock };
        const coders = createCoderService(ctx, {
          users: services.users,
          keys: services.keys,
          modelsAllowed: config.claude.models_allowed,
        });
        const report = await bootstrapCoder(
          {
            config,
            coders,
            enrollment: createEnrollmentService(ctx, { coders }),
            store: createKeyStore({
              mode,
              configDir: configDirOf(io.env, homedir),
              keychain: nativeKeychain(process.platform),
            }),
            prices: createPriceBook(config.pricing),
            actor,
            nodePath: process.execPath,
            defaultModel: await effectiveDefaultModel(config, installation.db, io.env),
          },
          {
            name,
            projectDir: resolve(io.cwd, opts.project ?? '.'),
            ...(monthlyBudgetMicro === undefined ? {} : { monthlyBudgetMicro }),
            ...(opts.model === undefined ? {} : { model: opts.model }),
            ...(opts.team === undefined ? {} : { team: opts.team }),
            enroll: opts.enroll === true,
            dryRun: opts.dryRun === true,
          },
        );
        if (json) return printJson(io, reportJson(report));
        printLines(io, describe(report));
      });
    });

  return cmd;
}

const money = (micro: number | null) => (micro === null ? 'no limit' : `$${formatUsd(micro)}`);

function describe(r: BootstrapReport): string[] {
  const would = r.dryRun ? 'Would ' : '';
  const lines: string[] = r.dryRun ? ['Dry run: nothing was changed.'] : [];
  const u = r.user;
  lines.push(
    u.created
      ? `${r.dryRun ? 'Would create' : 'Created'} user ${u.name} (member${u.team ? `, team ${u.team}` : ''}) with ${u.monthlyBudgetMicro === null ? 'no monthly budget' : `a monthly budget of ${money(u.monthlyBudgetMicro)}`}.`
      : `User ${u.name} already exists.`,
  );
  if (r.key) {
    const where = r.key.store.location;
    if (r.key.action === 'kept')
      lines.push(
        `${would}${r.dryRun ? 'keep' : 'Kept'} the stored key ${r.key.id} (${r.key.hint}) in ${where}.`,
      );
    else if (r.dryRun) lines.push(`Would issue a gateway key named claude-code and store it in ${where}.`);
    else {
      const fallback = 'fallbackReason' in r.key.store && r.key.store.fallbackReason !== undefined;
      lines.push(
        `Issued gateway key ${r.key.id} (${r.key.hint}) named claude-code; stored in ${where}${fallback ? ' (no OS keychain available)' : ''}.`,
      );
    }
  }
  if (r.settings) {
    const s = r.settings;
    if (!s.changed) lines.push(`${s.file} is already up to date.`);
    else if (r.dryRun)
      lines.push(`Would ${s.created ? 'create' : 'update'} ${s.file}:`, '', s.diff.trimEnd(), '');
    else
      lines.push(
        `${s.created ? 'Created' : 'Updated'} ${s.file} (base URL, apiKeyHelper, model ${r.model}, deny rules).`,
      );
  }
  if (r.enrollment) {
    const e = r.enrollment;
    if (e.code === null) lines.push('Would create a one-time enrollment code (valid 15 minutes).');
    else {
      lines.push(
        `One-time enrollment code for ${u.name} (single use, valid until ${isoTime(e.expiresAt)}):`,
        '',
        `  ${e.code}`,
        '',
        `${u.name} runs this in their project directory on their own machine:`,
        '',
        `  ${e.command}`,
        '',
      );
    }
  }
  lines.push(`${u.name}'s monthly limit: ${money(u.monthlyBudgetMicro)} (org cap: ${money(r.orgCapMicro)}).`);
  for (const note of r.notes) lines.push(`note: ${note}`);
  return lines;
}

function reportJson(r: BootstrapReport) {
  const usd = (micro: number | null) => (micro === null ? null : formatUsd(micro));
  return {
    dry_run: r.dryRun,
    user: {
      id: r.user.id,
      name: r.user.name,
      created: r.user.created,
      team: r.user.team,
      monthly_budget_usd: usd(r.user.monthlyBudgetMicro),
    },
    org_cap_usd: usd(r.orgCapMicro),
    model: r.model,
    key: r.key
      ? {
          action: r.key.action,
          id: r.key.id,
          hint: r.key.hint,
          store: r.key.store.where,
          location: r.key.store.location,
          keychain_error: ('fallbackReason' in r.key.store && r.key.store.fallbackReason) || null,
        }
      : null,
    settings: r.settings
      ? {
          file: r.settings.file,
          created: r.settings.created,
          changed: r.settings.changed,
          diff: r.settings.diff,
        }
      : null,
    enrollment: r.enrollment
      ? {
          code: r.enrollment.code,
          expires_at: isoTime(r.enrollment.expiresAt),
          command: r.enrollment.command,
        }
      : null,
    notes: r.notes,
  };
}
