// `tollgate credential export | import`: every credential in one passphrase-encrypted bundle file.

import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { systemClock } from '../../lib/clock.js';
import { AppError, isAppError } from '../../lib/errors.js';
import { fileExists } from '../../lib/file-exists.js';
import { syncDirectory } from '../../lib/sync-directory.js';
import type { BundleEntry } from '../../vault/bundle.js';
import {
  checkExportPassphrase,
  MAX_BUNDLE_BYTES,
  openBundle,
  readBundleHeader,
  sealBundle,
} from '../../vault/bundle.js';
import { createBundleService, type ImportReport } from '../../vault/bundle.service.js';
import type { CredentialView } from '../../vault/credential.service.js';
import type { Io } from '../io.js';
import { printJson, printLines } from '../output.js';
import { type ServiceEnv, withServices } from '../runtime.js';
import { readSecret } from '../secret-input.js';

export const PASSPHRASE_ENV = 'TOLLGATE_EXPORT_PASSPHRASE';

/** Adds `export --out FILE [--force]` and `import FILE [--replace]` to the `credential` command. */
export function addBundleCommands(cmd: Command, io: Io): void {
  cmd
    .command('export')
    .description(
      `write every credential to an encrypted bundle (passphrase from ${PASSPHRASE_ENV} or a prompt)`,
    )
    .requiredOption('--out <file>', 'the bundle file to write (created with mode 0600)')
    .option('--force', 'overwrite the file if it exists')
    .action(async (opts: { out: string; force?: boolean }, command: Command) => {
      const file = resolve(io.cwd, opts.out);
      const force = opts.force === true;
      if (!force && (await fileExists(file))) throw alreadyExists(file);
      await withServices(io, command, async (env) => {
        const passphrase = await readPassphrase(io, { confirm: true });
        const entries = await bundleService(env).exportAll(env.actor);
        await writePrivateFile(file, await sealBundle(entries, passphrase), force);
        if (env.json) return printJson(io, { exported: entries.length, file });
        printLines(io, [
          `Exported ${count(entries.length)} to ${file} (encrypted; anyone with the file and the passphrase has the secrets):`,
          ...entries.map((e) => `  ${describe(e)}`),
        ]);
      });
    });

  cmd
    .command('import <file>')
    .description('add the credentials of an encrypted bundle; existing names are skipped unless --replace')
    .option('--replace', 'give existing credentials the secret from the bundle (status and environment kept)')
    .action(async (fileArg: string, opts: { replace?: boolean }, command: Command) => {
      const file = resolve(io.cwd, fileArg);
      await withServices(io, command, async (env) => {
        const text = await readBundleFile(file);
        // A file that is not a readable bundle is refused before anyone is asked for a passphrase.
        readBundleHeader(text);
        const passphrase = await readPassphrase(io, { confirm: false });
        const { entries } = await openBundle(text, passphrase);
        const report = await bundleService(env).importAll(env.actor, entries, {
          replace: opts.replace === true,
        });
        if (env.json) return printJson(io, report);
        printImport(io, file, report, await env.services.credentials.list());
      });
    });
}

function bundleService({ installation, services }: ServiceEnv) {
  return createBundleService(
    { installation, clock: systemClock },
    { credentials: services.credentials, users: services.users, teams: services.teams },
  );
}

/** The passphrase from the environment, else a hidden prompt (asked twice on export), else stdin. */
async function readPassphrase(io: Io, { confirm }: { confirm: boolean }): Promise<string> {
  if (io.env[PASSPHRASE_ENV] !== undefined) {
    const passphrase = await readSecret(io, { fromEnv: PASSPHRASE_ENV }, '');
    if (confirm) checkExportPassphrase(passphrase);
    return passphrase;
  }
  const passphrase = await readSecret(io, {}, 'Bundle passphrase: ').catch(explainMissing);
  if (!confirm) return passphrase;
  checkExportPassphrase(passphrase);
  if (io.stdin.isTTY) {
    const again = await readSecret(io, {}, 'Repeat the passphrase: ').catch(explainMissing);
    if (again !== passphrase) throw new AppError('invalid_input', 'the two passphrases do not match');
  }
  return passphrase;
}

function explainMissing(error: unknown): never {
  if (
    isAppError(error) &&
    error.code === 'invalid_input' &&
    error.message.startsWith('no secret was given')
  ) {
    throw new AppError(
      'invalid_input',
      `no passphrase was given: set ${PASSPHRASE_ENV}, type it at the prompt or pipe it on standard input`,
    );
  }
  throw error;
}

async function readBundleFile(file: string): Promise<string> {
  try {
    if ((await stat(file)).size > MAX_BUNDLE_BYTES) {
      throw new AppError('invalid_input', `${file} is larger than ${MAX_BUNDLE_BYTES / 1024 / 1024} MiB`);
    }
    return await readFile(file, 'utf8');
  } catch (error) {
    if (isAppError(error)) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOENT') throw new AppError('not_found', `no such file: ${file}`);
    throw new AppError('invalid_input', `cannot read ${file}: ${code}`);
  }
}

/**
 * Writes a 0600 file all at once: a temporary file beside it is written and fsynced, then moved into
 * place, so a crash never leaves a half-written bundle. Without `overwrite` the move is a hard link,
 * which fails rather than replace a file created meanwhile.
 */
async function writePrivateFile(file: string, text: string, overwrite: boolean): Promise<void> {
  const temp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.chmod(0o600); // exact, whatever the umask
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (overwrite) await rename(temp, file);
    else await placeWithoutOverwrite(temp, file);
    await syncDirectory(dirname(file));
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    if (isAppError(error)) throw error;
    throw new AppError(
      'invalid_input',
      `cannot write ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

async function placeWithoutOverwrite(temp: string, file: string): Promise<void> {
  try {
    await link(temp, file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw alreadyExists(file);
    // Some file systems have no hard links; fall back to check-then-rename there.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw error;
    if (await fileExists(file)) throw alreadyExists(file);
    await rename(temp, file);
    return;
  }
  await unlink(temp);
}

// The rename is only durable once the directory entry is; some platforms cannot fsync a directory.

function alreadyExists(file: string): AppError {
  return new AppError('conflict', `${file} already exists; use --force to overwrite it`);
}

function printImport(io: Io, file: string, report: ImportReport, views: readonly CredentialView[]): void {
  const byName = new Map(views.map((v) => [v.name, v]));
  const line = (name: string) => {
    const v = byName.get(name);
    return v ? `  ${describe(v)}` : `  ${name}`;
  };
  const lines = [`From ${file}:`];
  if (report.imported.length > 0)
    lines.push(`Imported ${count(report.imported.length)}:`, ...report.imported.map(line));
  if (report.replaced.length > 0)
    lines.push(`Replaced the secret of ${count(report.replaced.length)}:`, ...report.replaced.map(line));
  if (report.skipped.length > 0)
    lines.push(
      `Skipped ${count(report.skipped.length)}:`,
      ...report.skipped.map((s) => `  ${s.name}: ${s.reason}`),
    );
  if (report.imported.length + report.replaced.length > 0) {
    lines.push('Imported secrets were not re-validated upstream (they were checked when first added).');
  } else {
    lines.push('Nothing was imported.');
  }
  printLines(io, lines);
}

function describe(c: Pick<BundleEntry, 'name' | 'provider' | 'owner' | 'hint'>): string {
  return `${c.name} (${c.provider}, owner ${c.owner}): ${c.hint}`;
}

function count(n: number): string {
  return `${n} credential${n === 1 ? '' : 's'}`;
}
