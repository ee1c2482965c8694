// `tollgate audit …`: the hash-chained audit log.
import { Command } from 'commander';
import type { AuditEntry } from '../../audit/audit.repo.js';
import type { AuditVerifyResult } from '../../audit/audit.service.js';
import { AppError } from '../../lib/errors.js';
import { parseSince } from '../dates.js';
import type { Io } from '../io.js';
import { isoTime, printJson, printLines, printTable, shortTime } from '../output.js';
import { withServices } from '../runtime.js';

export function auditCommand(io: Io): Command {
  const cmd = new Command('audit').description('read and verify the tamper-evident audit log');

  cmd
    .command('list')
    .description('list audit entries, oldest first')
    .option('--since <date>', 'ISO date or time (UTC), or a duration such as 7d')
    .option('--limit <n>', 'at most this many entries', '100')
    .action(async (opts: { since?: string; limit: string }, command: Command) => {
      const since = opts.since ? parseSince(opts.since, Date.now()) : undefined;
      const limit = Math.min(Number.parseInt(opts.limit, 10) || 100, 1000);
      await withServices(io, command, async ({ services, json }) => {
        const entries = await services.audit.list({ ...(since === undefined ? {} : { since }), limit });
        if (json) return printJson(io, entries.map(entryJson));
        printTable(
          io,
          ['seq', 'time', 'actor', 'action', 'target', 'details'],
          entries.map((e) => [
            e.seq,
            shortTime(e.at),
            e.actor,
            e.action,
            e.targetId,
            JSON.stringify(e.details),
          ]),
        );
      });
    });

  cmd
    .command('verify')
    .description(
      'verify the hash chain, its anchor and (with audit.witness_path) the witness file; names the first broken entry',
    )
    .action(async (_opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, json }) => {
        reportVerify(io, json, await services.audit.verify());
      });
    });

  cmd
    .command('witness')
    .description('start (or refresh) the witness file of audit.witness_path with the verified chain head')
    .action(async (_opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, json }) => {
        reportVerify(io, json, await services.audit.witness());
      });
    });

  return cmd;
}

function reportVerify(io: Io, json: boolean, result: AuditVerifyResult): void {
  if (json) printJson(io, result);
  if (result.ok) {
    if (!json) {
      const witnessed = result.witness
        ? `; witness ${result.witness.path} agrees (#${result.witness.seq})`
        : '';
      printLines(io, [
        `Audit log intact: ${result.entries} entries, head #${result.head.seq} ${result.head.hash.slice(0, 16)}…${witnessed}`,
      ]);
    }
    return;
  }
  const b = result.firstBroken;
  const where = b.reason.startsWith('witness-')
    ? `audit witness disagrees (${b.reason}): ${result.detail ?? ''}`
    : `audit log broken at entry #${b.index} (${b.reason})${b.seq !== null && b.seq !== b.index ? `, found seq ${b.seq}` : ''}`;
  throw new AppError('audit_broken', where, { index: b.index, reason: b.reason });
}

function entryJson(e: AuditEntry) {
  return {
    seq: e.seq,
    id: e.id,
    at: isoTime(e.at),
    actor: e.actor,
    action: e.action,
    target_type: e.targetType,
    target_id: e.targetId,
    details: e.details,
    hash: e.hash,
  };
}
