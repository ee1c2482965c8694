// `tollgate master-key rotate`: a new master key re-wraps every data key while servers keep serving
// (local database only; see src/install/master-key-rotation.ts for the steps and the crash safety).
import { Command } from 'commander';
import { type PausePoint, type RotateResult, rotateMasterKey } from '../../install/master-key-rotation.js';
import { systemClock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import type { Io } from '../io.js';
import { printJson, printLines } from '../output.js';
import { commandEnv } from '../runtime.js';

/** Test-only: stop at this point (started, key-written, rewrapped, or after N re-wrapped records). */
export const PAUSE_ENV = 'TOLLGATE_TEST_ROTATE_PAUSE_AFTER';

function pausePoint(value: string | undefined): PausePoint | null {
  if (value === undefined || value === '') return null;
  if (value === 'started' || value === 'key-written' || value === 'rewrapped') return value;
  if (/^[1-9][0-9]*$/.test(value)) return Number(value);
  throw new AppError(
    'invalid_input',
    `${PAUSE_ENV} must be started, key-written, rewrapped or a record count`,
  );
}

export function masterKeyCommand(io: Io): Command {
  const cmd = new Command('master-key').description('the master key that wraps every data key');
  cmd
    .command('rotate')
    .description(
      're-wrap every data key under a new master key, no downtime (run again to resume or complete)',
    )
    .action(async (_opts: unknown, command: Command) => {
      const { config, json, actor } = await commandEnv(io, command);
      const at = pausePoint(io.env[PAUSE_ENV]);
      let printedKey: string | null = null;
      const result = await rotateMasterKey(config, {
        clock: systemClock,
        actor,
        // The test hook re-wraps one record per transaction, so it can stop after exactly N.
        ...(at === null
          ? {}
          : {
              batchSize: 1,
              pause: {
                at,
                fn: () => {
                  io.stderr.write(`paused at ${at}\n`);
                  // Waits to be killed (the test's kill -9).
                  return new Promise<void>(() => setInterval(() => undefined, 1 << 30));
                },
              },
            }),
        onWitnessError: (message) => io.stderr.write(`warning: ${message}\n`),
        onNewKey: (text, state) => {
          printedKey = text;
          if (json) return;
          printLines(io, [
            `Rotating the master key: version ${state.from.version} (fingerprint ${state.from.fingerprint}) → version ${state.to.version} (fingerprint ${state.to.fingerprint}).`,
            '',
            'New master key (shown only now; store it where TOLLGATE_MASTER_KEY or TOLLGATE_MASTER_KEY_FILE comes from):',
            '',
            `  ${text}`,
            '',
          ]);
        },
      });
      if (json) {
        return printJson(io, {
          from_version: result.from.version,
          from_fingerprint: result.from.fingerprint,
          to_version: result.to.version,
          to_fingerprint: result.to.fingerprint,
          source: result.source,
          rewrapped: result.rewrapped,
          completed: result.completed,
          backup_file: result.backupFile,
          ...(printedKey === null ? {} : { master_key: printedKey }),
        });
      }
      printLines(io, summary(result));
    });
  return cmd;
}

function summary(r: RotateResult): string[] {
  const from = `version ${r.from.version} (fingerprint ${r.from.fingerprint})`;
  const to = `version ${r.to.version} (fingerprint ${r.to.fingerprint})`;
  const backups = `Backups taken before this rotation need the previous key, ${from}: keep that key for as long as you keep those backups.`;
  if (r.completed && r.source === 'home-file') {
    return [
      `Rotated the master key from ${from} to ${to}; ${r.rewrapped} records re-wrapped.`,
      'The new key is in the home key file; running servers learned it without a restart.',
      r.backupFile === null
        ? backups
        : `The previous key is kept in ${r.backupFile}: move it to where you keep the backups taken before now, then delete it from the home directory.`,
      ...(r.backupFile === null ? [] : [backups]),
    ];
  }
  if (r.completed) {
    return [
      `Completed the master key rotation from ${from} to ${to}; the previous key no longer opens this installation.`,
      backups,
    ];
  }
  return [
    `Every record is now wrapped under ${to}; ${r.rewrapped} re-wrapped by this run. Running servers learned the new key.`,
    'Next:',
    '  1. Store the new key where TOLLGATE_MASTER_KEY or TOLLGATE_MASTER_KEY_FILE comes from.',
    '  2. Restart every Tollgate process with the new key, one at a time (until then they keep working with the previous key).',
    '  3. Run `tollgate master-key rotate` again with the new key: it completes the rotation, after which the previous key is refused.',
    backups,
  ];
}
