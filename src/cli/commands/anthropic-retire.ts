// `tollgate anthropic keys retirements | retire-due`: the old keys of `credential rotate --retire`,
// disabled through the Admin API once the grace ends (by `tollgate serve`, or now with retire-due).
import type { Command } from 'commander';
import type { RetirementResult } from '../../anthropic-admin/key-retirement.service.js';
import { AppError } from '../../lib/errors.js';
import type { Io } from '../io.js';
import { isoTime, printJson, printLines, printTable, shortTime } from '../output.js';
import { withServices } from '../runtime.js';

export function addRetirementCommands(keys: Command, io: Io): void {
  keys
    .command('retirements')
    .description(
      'old keys of `credential rotate --retire`: pending (with the last error), disabled, or not found',
    )
    .action(async (_opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, json }) => {
        const rows = await services.keyRetirements.list();
        if (json)
          return printJson(
            io,
            rows.map((r) => ({
              ...r,
              dueAt: isoTime(r.dueAt),
              nextAttemptAt: isoTime(r.nextAttemptAt),
              doneAt: isoTime(r.doneAt),
            })),
          );
        printTable(
          io,
          ['credential', 'old key', 'due', 'state', 'anthropic key', 'attempts', 'last error'],
          rows.map((r) => [
            r.credential,
            r.oldHint,
            shortTime(r.dueAt),
            r.state,
            r.anthropicKeyId ?? '—',
            r.attempts,
            r.lastError ?? '—',
          ]),
        );
      });
    });

  keys
    .command('retire-due')
    .description('disable now the old keys whose rotation grace has ended (serve does it every 30 s)')
    .action(async (_opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, json, actor }) => {
        const results = await services.keyRetirements.runDue(actor);
        if (json) return printJson(io, results);
        if (results.length === 0) return printLines(io, ['No old key is due for retirement.']);
        printLines(io, results.map(describe));
        const failed = results.filter((r) => r.outcome === 'failed').length;
        if (failed > 0)
          throw new AppError(
            'upstream_error',
            `${failed} old key(s) could not be retired yet; they are retried later (see \`tollgate anthropic keys retirements\`)`,
          );
      });
    });
}

function describe(r: RetirementResult): string {
  switch (r.outcome) {
    case 'disabled':
      return `Disabled the old key of ${r.credential} (${r.oldHint}) at Anthropic: ${r.anthropicKeyId}.`;
    case 'already_inactive':
      return `The old key of ${r.credential} (${r.oldHint}) was already inactive at Anthropic: ${r.anthropicKeyId}.`;
    case 'no_match':
      return `Not retired: ${r.message ?? 'no matching key'} (old key of ${r.credential}).`;
    case 'failed':
      return `Could not retire the old key of ${r.credential} (${r.oldHint}) yet; will retry: ${r.message ?? ''}`;
  }
}
