// `tollgate backup --out FILE` and `tollgate restore FILE`: a consistent snapshot of the local database
// into a portable, checksummed file, and back into an empty database of either engine.

import { resolve } from 'node:path';
import { Command } from 'commander';
import { alreadyExists, createBackupSink } from '../../backup/backup-file.js';
import { openBackupSource } from '../../backup/backup-source.js';
import { type RestoreSummary, restoreBackup } from '../../backup/restore.js';
import { createSealer } from '../../backup/sealed.js';
import { writeBackup } from '../../backup/snapshot.js';
import { loadMasterKey } from '../../crypto/master-key.js';
import { openDatabase } from '../../db/connect.js';
import { change } from '../../install/context.js';
import { openInstallation } from '../../install/installation.js';
import { systemClock } from '../../lib/clock.js';
import { AppError, isAppError } from '../../lib/errors.js';
import { fileExists } from '../../lib/file-exists.js';
import { checkExportPassphrase } from '../../vault/bundle.js';
import type { Io } from '../io.js';
import { printJson, printLines } from '../output.js';
import { commandEnv } from '../runtime.js';
import { readSecret } from '../secret-input.js';

export const BACKUP_PASSPHRASE_ENV = 'TOLLGATE_BACKUP_PASSPHRASE';

export function backupCommand(io: Io): Command {
  return new Command('backup')
    .description(
      'write a consistent snapshot of the database to a file (secrets stay sealed under the master key)',
    )
    .requiredOption('--out <file>', 'the backup file to write (created with mode 0600)')
    .option('--force', 'overwrite the file if it exists')
    .option(
      '--encrypt',
      `also encrypt the whole file under a passphrase (${BACKUP_PASSPHRASE_ENV} or a prompt)`,
    )
    .action(async (opts: { out: string; force?: boolean; encrypt?: boolean }, command: Command) => {
      const file = resolve(io.cwd, opts.out);
      const overwrite = opts.force === true;
      if (!overwrite && (await fileExists(file))) throw alreadyExists(file);
      const env = await commandEnv(io, command);
      const installation = await openInstallation(env.config, {
        onWitnessError: (message) => io.stderr.write(`warning: ${message}\n`),
      });
      try {
        const sealer = opts.encrypt ? await createSealer(await readPassphrase(io, true)) : null;
        const sink = await createBackupSink(file, { overwrite, sealer });
        let summary: Awaited<ReturnType<typeof writeBackup>>;
        try {
          summary = await writeBackup(installation.db, {
            fingerprint: installation.master.fingerprint,
            now: Date.now(),
            sink,
          });
        } catch (error) {
          await sink.discard();
          throw error;
        }
        await sink.commit();
        const rows = Object.values(summary.rows).reduce((a, b) => a + b, 0);
        const { header } = summary;
        // Every sealed secret left in that file: worth a trace though nothing changed (after the
        // snapshot, so the entry is not in the file itself).
        await change({ installation, clock: systemClock }, env.actor, (u) =>
          u.audit('install.backup', 'org', installation.orgId, {
            engine: header.engine,
            schema: header.migrations.at(-1) ?? null,
            rows,
            encrypted: sealer !== null,
          }),
        );
        if (env.json)
          return printJson(io, {
            file,
            engine: header.engine,
            schema: header.migrations.at(-1) ?? null,
            master_key_fingerprint: header.master_key_fingerprint,
            encrypted: sealer !== null,
            rows: summary.rows,
          });
        printLines(io, [
          `Backed up ${rows} rows of ${header.tables.length} tables to ${file}${sealer ? ' (encrypted under the passphrase)' : ''}.`,
          `Schema ${header.migrations.at(-1) ?? '-'}, ${header.engine}, master key fingerprint ${header.master_key_fingerprint}.`,
          'Secrets in it stay sealed under the master key: keep that key (it is not in the file) to restore.',
        ]);
      } finally {
        await installation.close();
      }
    });
}

export function restoreCommand(io: Io): Command {
  return new Command('restore')
    .description('load a backup into the configured database, which must be empty (same master key needed)')
    .argument('<file>', 'a file written by `tollgate backup`')
    .action(async (fileArg: string, _opts: unknown, command: Command) => {
      const file = resolve(io.cwd, fileArg);
      const env = await commandEnv(io, command);
      const master = await loadMasterKey(env.config.masterKey).catch((error: unknown) => {
        if (isAppError(error) && error.code === 'master_key_invalid') throw error;
        throw new AppError(
          'master_key_invalid',
          `no master key to restore with: a restore needs the master key that was current when the backup was taken (copy it to ${env.config.masterKey.defaultFile}, or set TOLLGATE_MASTER_KEY or TOLLGATE_MASTER_KEY_FILE)`,
          {},
          { cause: error },
        );
      });
      const source = await openBackupSource(file, () => readPassphrase(io, false));
      const db = openDatabase(env.config.database);
      let restored: RestoreSummary;
      try {
        restored = await restoreBackup(db, master, source);
      } finally {
        source.sealed?.key.fill(0);
        await db.close();
      }
      const { header, rows } = restored;
      const total = Object.values(rows).reduce((a, b) => a + b, 0);
      // Opened the way every command opens it (master key check, anchor key from the restored org id and
      // pepper); the restore is recorded as the next entry of the restored audit chain.
      const installation = await openInstallation(env.config, {
        onWitnessError: (message) => io.stderr.write(`warning: ${message}\n`),
      });
      try {
        await change({ installation, clock: systemClock }, env.actor, (u) =>
          u.audit('install.restore', 'org', installation.orgId, {
            from_engine: header.engine,
            taken_at: header.created_at,
            rows: total,
          }),
        );
        if (env.json) return printJson(io, { file, engine: db.dialect, from_engine: header.engine, rows });
        printLines(io, [
          `Restored ${total} rows of ${header.tables.length} tables from ${file} (taken ${header.created_at} on ${header.engine}) into ${db.dialect}.`,
          'Check it with `tollgate audit verify`, then start the server.',
        ]);
      } finally {
        await installation.close();
      }
    });
}

/** The passphrase from the environment, else a hidden prompt (asked twice for a new file), else stdin. */
async function readPassphrase(io: Io, confirm: boolean): Promise<string> {
  const fromEnv = io.env[BACKUP_PASSPHRASE_ENV] !== undefined;
  const passphrase = await readSecret(
    io,
    fromEnv ? { fromEnv: BACKUP_PASSPHRASE_ENV } : {},
    'Backup passphrase: ',
  );
  if (!confirm) return passphrase;
  checkExportPassphrase(passphrase);
  if (!fromEnv && io.stdin.isTTY) {
    const again = await readSecret(io, {}, 'Repeat the passphrase: ');
    if (again !== passphrase) throw new AppError('invalid_input', 'the two passphrases do not match');
  }
  return passphrase;
}
