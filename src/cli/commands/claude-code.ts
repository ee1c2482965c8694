// `tollgate claude-code …`: Claude Code on a coder's machine (setup, key-helper) and the settings files
// an admin hands out (settings).
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { checkModel } from '../../claude-code/bootstrap.js';
import { assertPerson } from '../../claude-code/coder.service.js';
import { effectiveDefaultModel } from '../../claude-code/default-model.js';
import { unifiedDiff } from '../../claude-code/diff.js';
import { helperKey } from '../../claude-code/key-helper.js';
import { configDirOf, createKeyStore, keyStoreModeOf, nativeKeychain } from '../../claude-code/key-store.js';
import {
  MANAGED_SETTINGS_FILES,
  planSettings,
  projectSettingsFile,
  settingsFor,
  writeSettings,
} from '../../claude-code/settings-file.js';
import { setupClaudeCode } from '../../claude-code/setup.js';
import { AppError } from '../../lib/errors.js';
import { createPriceBook } from '../../pricing/models.js';
import type { Io } from '../io.js';
import { printJson, printLines } from '../output.js';
import { globalsOf, withServices } from '../runtime.js';

function keyStore(io: Io) {
  return createKeyStore({
    mode: keyStoreModeOf(io.env),
    configDir: configDirOf(io.env, homedir),
    keychain: nativeKeychain(process.platform),
  });
}

export function claudeCodeCommand(io: Io): Command {
  const cmd = new Command('claude-code').description('set up Claude Code to work through Tollgate');

  cmd
    .command('setup')
    .description(
      'on your own machine: exchange an enrollment code for your key and write .claude/settings.json',
    )
    // --server <url> (Tollgate's https URL) is the program's global option, read through globalsOf.
    .requiredOption('--code <code>', 'the one-time enrollment code from your admin (ENR-…)')
    .option(
      '--project <dir>',
      'project whose .claude/settings.json is written (default: the current directory)',
    )
    .option('--profile <name>', 'name the key is stored under (default: your Tollgate user name)')
    .action(async (opts: { code: string; project?: string; profile?: string }, command: Command) => {
      const server = globalsOf(command).server ?? io.env.TOLLGATE_SERVER;
      if (!server) throw new AppError('invalid_input', "required option '--server <url>' not specified");
      const result = await setupClaudeCode(
        { store: keyStore(io), nodePath: process.execPath },
        {
          server,
          code: opts.code,
          projectDir: resolve(io.cwd, opts.project ?? '.'),
          ...(opts.profile === undefined ? {} : { profile: opts.profile }),
        },
      );
      if (globalsOf(command).json) {
        return printJson(io, {
          profile: result.profile,
          model: result.model,
          base_url: result.baseUrl,
          key_store: result.stored.where,
          key_location: result.stored.location,
          keychain_error: result.stored.fallbackReason ?? null,
          settings_file: result.settings.file,
          notes: result.notes,
        });
      }
      const fallback = result.stored.fallbackReason !== undefined;
      printLines(io, [
        `Stored your gateway key for profile ${result.profile} in ${result.stored.location}${fallback ? ' (no OS keychain available)' : ''}.`,
        `${result.settings.changed ? 'Wrote' : 'Kept'} ${result.settings.file}: Claude Code now uses ${result.baseUrl} with model ${result.model}.`,
        'Start Claude Code in that project (`claude`); Tollgate accounts your usage to your user.',
        ...result.notes.map((note) => `note: ${note}`),
      ]);
    });

  cmd
    .command('settings')
    .description("write Claude Code settings for a user's profile to a project or a managed-settings file")
    .requiredOption('--user <user>', 'the user whose key profile the apiKeyHelper names')
    .option(
      '--project <dir>',
      'project whose .claude/settings.json is written (default: the current directory)',
    )
    .option('--managed <file>', `a managed-settings file, e.g. ${MANAGED_SETTINGS_FILES.linux}`)
    .option('--model <model>', 'model (default claude.default_model)')
    .option('--dry-run', 'print the diff; change nothing')
    .action(
      async (
        opts: { user: string; project?: string; managed?: string; model?: string; dryRun?: boolean },
        command: Command,
      ) => {
        if (opts.project !== undefined && opts.managed !== undefined)
          throw new AppError('invalid_input', 'use either --project or --managed, not both');
        await withServices(io, command, async ({ services, installation, config, json }) => {
          const user = await services.users.get(opts.user);
          assertPerson(user);
          const model = checkModel(
            opts.model ?? (await effectiveDefaultModel(config, installation.db, io.env)),
            config,
            createPriceBook(config.pricing),
          );
          const file = opts.managed
            ? resolve(io.cwd, opts.managed)
            : projectSettingsFile(resolve(io.cwd, opts.project ?? '.'));
          const plan = await planSettings(
            file,
            settingsFor({
              baseUrl: config.server.public_url,
              profile: user.name,
              model,
              deny: config.claude_code.deny,
              nodePath: process.execPath,
            }),
          );
          const diff = unifiedDiff(plan.before ?? '', plan.after, {
            from: plan.before === null ? '/dev/null' : file,
            to: file,
          });
          if (!opts.dryRun) await writeSettings(plan);
          if (json)
            return printJson(io, {
              file,
              changed: plan.changed,
              dry_run: opts.dryRun === true,
              diff,
              notes: plan.warnings,
            });
          const verb = opts.dryRun ? 'Would write' : 'Wrote';
          printLines(io, [
            plan.changed ? `${verb} ${file}${opts.dryRun ? ':' : '.'}` : `${file} is already up to date.`,
            ...(opts.dryRun && plan.changed ? ['', diff.trimEnd(), ''] : []),
            ...(opts.managed
              ? [
                  `Managed settings apply to everyone on the machine and win over project and user settings; each coder still needs their key stored under profile ${user.name} (tollgate claude-code setup).`,
                ]
              : []),
            ...plan.warnings.map((note) => `note: ${note}`),
          ]);
        });
      },
    );

  cmd
    .command('key-helper')
    .description("print the stored gateway key (Claude Code's apiKeyHelper runs this)")
    .option('--profile <name>', 'the key profile (default: the only one stored)')
    .action(async (opts: { profile?: string }) => {
      io.stdout.write(`${await helperKey(opts.profile, io.env, nativeKeychain(process.platform))}\n`);
    });

  return cmd;
}
