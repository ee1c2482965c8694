// `tollgate credential import-secrets FILE`: moves the Claude keys of a legacy .secrets.yml into the vault.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { systemClock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { type ImportReport, importSecrets } from '../../vault/import-secrets.js';
import type { Io } from '../io.js';
import { printJson, printLines } from '../output.js';
import { withServices } from '../runtime.js';

export function addImportSecretsCommand(cmd: Command, io: Io): void {
  cmd
    .command('import-secrets <file>')
    .description(
      'import claude.org_api_key and claude.admin_api_key of a .secrets.yml as org credentials ' +
        '(validated, encrypted, audited) and remember claude.default_model and claude.workspace_id; ' +
        'the file is only read. Exits 1 when a key was refused',
    )
    .option('--no-validate', 'store the keys without checking them with Anthropic')
    .option('--name-prefix <prefix>', 'prefix of the credential names org-api-key and org-admin-key', '')
    .action(async (file: string, opts: { validate: boolean; namePrefix: string }, command: Command) => {
      await withServices(io, command, async ({ services, installation, config, actor, json }) => {
        const report = await importSecrets(
          {
            ctx: { installation, clock: systemClock },
            credentials: services.credentials,
            configFile: config.configFile,
            env: io.env,
          },
          actor,
          resolve(io.cwd, file),
          { validate: opts.validate, namePrefix: opts.namePrefix },
        );
        if (json) printJson(io, report);
        else printReport(io, report);
        const first = report.refused[0];
        if (first) {
          throw new AppError(
            first.code,
            `${report.refused.length} key(s) in ${report.file} were refused and not stored: ${report.refused
              .map((r) => r.name)
              .join(', ')}`,
          );
        }
      });
    });
}

function printReport(io: Io, report: ImportReport): void {
  const lines: string[] = [`From ${report.file}:`];
  for (const c of report.imported) {
    lines.push(
      `  imported ${c.name} (${c.provider}, org): ${c.hint}${c.validated ? ', checked with Anthropic' : ', not validated (--no-validate)'}`,
    );
  }
  for (const s of report.remembered) lines.push(`  remembered ${s.setting} = ${s.value} (from ${s.field})`);
  for (const r of report.refused) lines.push(`  refused ${r.field} (${r.name}): ${r.reason}`);
  for (const s of report.skipped)
    lines.push(`  skipped ${s.field}${s.name ? ` (${s.name})` : ''}: ${s.reason}`);
  if (report.imported.length === 0) lines.push('  no credential was imported');
  for (const warning of report.warnings) lines.push('', `Warning: ${warning}`);
  if (report.advice) lines.push('', `Note: ${report.advice}.`);
  printLines(io, lines);
}
