// `tollgate usage`: spend and tokens from the ledger, grouped by model, user, key, team, credential or day.
import { Command } from 'commander';
import { periodStart } from '../../budgets/periods.js';
import { formatUsd } from '../../lib/money.js';
import { oneOf } from '../../lib/validate.js';
import { GROUPS, type Group, summarise } from '../../usage/usage.repo.js';
import { parseSince } from '../dates.js';
import type { Io } from '../io.js';
import { printJson, printLines, printTable } from '../output.js';
import { withServices } from '../runtime.js';

interface UsageOptions {
  user?: string;
  team?: string;
  key?: string;
  since?: string;
  until?: string;
  by: string;
}

export function usageCommand(io: Io): Command {
  return new Command('usage')
    .description('tokens and cost per model (or --by user|key|team|credential|day); default: this UTC month')
    .option('--user <user>')
    .option('--team <team>')
    .option('--key <id>')
    .option('--since <date>', 'YYYY-MM-DD, ISO time or e.g. 7d (default: start of this UTC month)')
    .option('--until <date>', 'exclusive end (default: now)')
    .option('--by <group>', GROUPS.join('|'), 'model')
    .action(async (opts: UsageOptions, command: Command) => {
      const by = oneOf<Group>('--by', opts.by, GROUPS);
      const now = Date.now();
      const since = opts.since ? parseSince(opts.since, now) : periodStart('month', now);
      const until = opts.until ? parseSince(opts.until, now) : now + 1;
      await withServices(io, command, async ({ services, installation, json }) => {
        const userId = opts.user ? (await services.users.get(opts.user)).id : undefined;
        const teamId = opts.team ? (await services.teams.get(opts.team)).id : undefined;
        const rows = await summarise(installation.db, by, {
          since,
          until,
          ...(userId ? { userId } : {}),
          ...(teamId ? { teamId } : {}),
          ...(opts.key ? { keyId: opts.key } : {}),
        });
        if (json) {
          return printJson(
            io,
            rows.map(({ group, ...rest }) => ({ [by]: group, ...rest })),
          );
        }
        printLines(io, [
          `Usage from ${new Date(since).toISOString()} to ${new Date(Math.min(until, now)).toISOString()}, by ${by}:`,
        ]);
        printTable(
          io,
          [
            by,
            'requests',
            'input',
            'output',
            'cache write 5m',
            'cache write 1h',
            'cache read',
            'cost (USD)',
            'saved (USD)',
          ],
          rows.map((r) => [
            r.group ?? '-',
            r.requests,
            r.input_tokens,
            r.output_tokens,
            r.cache_write_5m_tokens,
            r.cache_write_1h_tokens,
            r.cache_read_tokens,
            r.cost_usd,
            formatUsd(r.saved_micro_usd),
          ]),
        );
        if (rows.length > 0) {
          const total = rows.reduce((sum, r) => sum + r.cost_micro_usd, 0);
          printLines(io, [
            `Total: $${formatUsd(total)} over ${rows.reduce((n, r) => n + r.requests, 0)} requests.`,
          ]);
        }
      });
    });
}
