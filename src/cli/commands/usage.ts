// `tollgate usage`: spend and tokens from the ledger, grouped by model, user, key, team, credential or
// day; through the admin API's `usage.query` (in-process, or on a remote server with --server).
import { Command } from 'commander';
import type { z } from 'zod/v4';
import { opById } from '../../api/admin/lookup.js';
import { usageOps, type usageRowSchema } from '../../api/admin/usage.ops.js';
import { periodStart } from '../../budgets/periods.js';
import { parseSince } from '../../lib/dates.js';
import { formatUsd } from '../../lib/money.js';
import { oneOf } from '../../lib/validate.js';
import { GROUPS, type Group } from '../../usage/usage.repo.js';
import type { Io } from '../io.js';
import { printJson, printLines, printTable } from '../output.js';
import { withApi } from '../runtime.js';
import { usageSummary } from './usage-summary.js';

type UsageRowJson = z.output<typeof usageRowSchema>;
const op = opById(usageOps);

export interface UsageOptions {
  user?: string;
  team?: string;
  key?: string;
  model?: string;
  credential?: string;
  since?: string;
  until?: string;
  by: string;
  summary?: boolean;
}

export function usageCommand(io: Io): Command {
  return new Command('usage')
    .description(
      'tokens and cost per model (or --by user|key|team|credential|day, days in usage.timezone); default: this UTC month',
    )
    .option('--user <user>')
    .option('--team <team>')
    .option('--key <id>')
    .option('--model <model>')
    .option('--credential <id>')
    .option('--since <date>', 'YYYY-MM-DD, ISO time or e.g. 7d (default: start of this UTC month)')
    .option('--until <date>', 'exclusive end (default: now)')
    .option('--by <group>', GROUPS.join('|'), 'model')
    .option(
      '--summary',
      'this UTC month at a glance: per user and per model, cache savings, remaining budgets (its own JSON with --json)',
    )
    .action(async (opts: UsageOptions, command: Command) => {
      if (opts.summary) return usageSummary(io, command, opts);
      // Checked here first, so a mistake names the option and nothing is sent.
      const by = oneOf<Group>('--by', opts.by, GROUPS);
      const now = Date.now();
      const since = opts.since ? parseSince(opts.since, now, '--since') : periodStart('month', now);
      const until = opts.until ? parseSince(opts.until, now, '--until') : now + 1;
      await withApi(io, command, async ({ client, json }) => {
        const answer = await client.call<{ items: UsageRowJson[] }>(op('usage.query'), {
          query: {
            by,
            // Without --since/--until the server takes its own month and "now": its ledger, its clock.
            ...(opts.since ? { since: new Date(since).toISOString() } : {}),
            ...(opts.until ? { until: new Date(until).toISOString() } : {}),
            ...(opts.user ? { user: opts.user } : {}),
            ...(opts.team ? { team: opts.team } : {}),
            ...(opts.key ? { key: opts.key } : {}),
            ...(opts.model ? { model: opts.model } : {}),
            ...(opts.credential ? { credential: opts.credential } : {}),
          },
        });
        const rows = answer.items;
        if (json) return printJson(io, rows);
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
            r[by] ?? '-',
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
