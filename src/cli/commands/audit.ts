// `tollgate audit …`: the hash-chained audit log. `list` and `verify` go through the admin API's
// operations (in-process, or on a remote server with --server); `witness` writes a file on this
// machine and `export` writes a file here: both work on the local database only.
import { resolve } from 'node:path';
import { Command } from 'commander';
import type { z } from 'zod/v4';
import { type AuditEntryJson, auditOps, type auditVerifySchema } from '../../api/admin/audit.ops.js';
import { opById } from '../../api/admin/lookup.js';
import type { Page } from '../../api/pagination.js';
import { exportAudit } from '../../audit/audit-export.js';
import { exportProofKey } from '../../audit/export-proof.js';
import { parseSince } from '../../lib/dates.js';
import { AppError } from '../../lib/errors.js';
import type { Io } from '../io.js';
import { printJson, printLines, printTable, shortTime } from '../output.js';
import { withApi, withServices } from '../runtime.js';
import { type VerifyFileOptions, verifyFile } from './audit-verify-file.js';

type VerifyJson = z.output<typeof auditVerifySchema>;
const op = opById(auditOps);

/** Rows per API call while listing (the API's largest page). */
const PAGE = 500;

interface ListOptions {
  since?: string;
  until?: string;
  actor?: string;
  action?: string;
  targetType?: string;
  targetId?: string;
  limit: string;
}

export function auditCommand(io: Io): Command {
  const cmd = new Command('audit').description('read and verify the tamper-evident audit log');

  cmd
    .command('list')
    .description('list audit entries, oldest first')
    .option('--since <date>', 'ISO date or time (UTC), or a duration such as 7d')
    .option('--until <date>', 'exclusive end: ISO date or time (UTC), or a duration such as 1d')
    .option('--actor <actor>', 'only entries of this actor, e.g. admin:alice')
    .option('--action <action>', 'only entries of this action, e.g. key.issue')
    .option('--target-type <type>', 'only entries about this kind of object, e.g. key')
    .option('--target-id <id>', 'only entries about this object')
    .option('--limit <n>', 'at most this many entries (at most 1000)', '100')
    .action(async (opts: ListOptions, command: Command) => {
      const now = Date.now();
      // Parsed here first, so a mistake names the option; sent as ISO times.
      const since = opts.since ? parseSince(opts.since, now, '--since') : undefined;
      const until = opts.until ? parseSince(opts.until, now, '--until') : undefined;
      const limit = Math.max(1, Math.min(Number.parseInt(opts.limit, 10) || 100, 1000));
      await withApi(io, command, async ({ client, json }) => {
        const query: Record<string, string> = {
          ...(since === undefined ? {} : { since: new Date(since).toISOString() }),
          ...(until === undefined ? {} : { until: new Date(until).toISOString() }),
          ...(opts.actor ? { actor: opts.actor } : {}),
          ...(opts.action ? { action: opts.action } : {}),
          ...(opts.targetType ? { target_type: opts.targetType } : {}),
          ...(opts.targetId ? { target_id: opts.targetId } : {}),
        };
        const entries: AuditEntryJson[] = [];
        let cursor: string | null = null;
        do {
          const page: Page<AuditEntryJson> = await client.call(op('audit.list'), {
            query: {
              ...query,
              limit: String(Math.min(PAGE, limit - entries.length)),
              ...(cursor === null ? {} : { cursor }),
            },
          });
          entries.push(...page.items);
          cursor = page.next_cursor;
        } while (cursor !== null && entries.length < limit);
        if (json) return printJson(io, entries);
        printTable(
          io,
          ['seq', 'time', 'actor', 'action', 'target', 'details'],
          entries.map((e) => [
            e.seq,
            shortTime(Date.parse(e.at)),
            e.actor,
            e.action,
            e.target_id,
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
    .option('--file <file>', 'check an `audit export` file offline instead (no database, no server)')
    .option('--witness <file>', 'with --file: heads recorded in this witness file must be in the export')
    .option(
      '--head <seq:hash>',
      'with --file: a head recorded elsewhere (e.g. 42:9f86d0…) must be in the export',
    )
    .option(
      '--with-master-key',
      "with --file: also check the proof line's MAC with the master key (TOLLGATE_MASTER_KEY, _FILE or the home's key file)",
    )
    .action(async (opts: VerifyFileOptions, command: Command) => {
      if (opts.file !== undefined) return verifyFile(io, command, opts.file, opts);
      if (opts.witness !== undefined || opts.head !== undefined || opts.withMasterKey)
        throw new AppError('invalid_input', '--witness, --head and --with-master-key go with --file');
      await withApi(io, command, async ({ client, json }) => {
        reportVerify(io, json, await client.call<VerifyJson>(op('audit.verify')));
      });
    });

  cmd
    .command('export')
    .description(
      'write the whole log as JSON Lines (one stored row per line, to recompute the chain) to a new 0600 file',
    )
    .requiredOption('--out <file>', 'the file to create (an existing file is never replaced)')
    .action(async (opts: { out: string }, command: Command) => {
      // Local only: the file is written on this machine, from this database.
      await withServices(io, command, async ({ installation, json }) => {
        const keys = {
          db: installation.db,
          orgId: installation.orgId,
          anchorKey: installation.anchorKey,
          proofKey: exportProofKey(installation.master),
        };
        const done = await exportAudit(keys, resolve(io.cwd, opts.out), Date.now());
        if (json) printJson(io, { path: done.path, entries: done.entries, verified: done.verified });
        else printLines(io, [`Exported ${done.entries} audit entries to ${done.path}.`]);
        // The file is kept (it is the evidence), but a script must not take it for a sound log.
        if (!done.verified.ok) {
          const b = done.verified.firstBroken;
          throw new AppError(
            'audit_broken',
            `the exported log does not verify: broken at entry #${b.index} (${b.reason})`,
            { index: b.index, reason: b.reason },
          );
        }
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

/** Prints a verdict; a broken log exits 3 (audit_broken) in both modes, after its JSON with --json. */
function reportVerify(io: Io, json: boolean, result: VerifyJson): void {
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
