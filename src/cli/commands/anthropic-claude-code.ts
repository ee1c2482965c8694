// `tollgate anthropic claude-code [--day YYYY-MM-DD]`: Anthropic's Claude Code analytics of one UTC day
// per actor, beside the Tollgate spend of the user whose email matches.
import { Command } from 'commander';
import { systemClock } from '../../lib/clock.js';
import { formatUsdFixed } from '../../lib/money.js';
import type { Io } from '../io.js';
import { printJson, printTable } from '../output.js';
import { withServices } from '../runtime.js';

export function claudeCodeCommand(io: Io): Command {
  return new Command('claude-code')
    .description("Claude Code analytics of one UTC day per actor (Anthropic's report), beside Tollgate spend")
    .option('--day <YYYY-MM-DD>', 'the UTC day (default: yesterday, the last whole day)')
    .action(async (opts: { day?: string }, command: Command) => {
      const day = opts.day ?? new Date(systemClock() - 86_400_000).toISOString().slice(0, 10);
      await withServices(io, command, async ({ services, json }) => {
        const rows = await services.claudeCode.day(day);
        if (json) return printJson(io, rows);
        printTable(
          io,
          [
            'actor',
            'sessions',
            'lines +/-',
            'commits',
            'PRs',
            'tools ok/no',
            'est. cost',
            'tollgate user',
            'tollgate spend',
          ],
          rows.map((r) => [
            r.actor,
            r.sessions,
            `+${r.linesAdded}/-${r.linesRemoved}`,
            r.commits,
            r.pullRequests,
            `${r.toolAccepted}/${r.toolRejected}`,
            `$${formatUsdFixed(Math.round(r.estimatedCostCents * 10_000), 2)}`,
            r.tollgateUser ?? '—',
            r.tollgateMicroUsd === null ? '—' : `$${formatUsdFixed(r.tollgateMicroUsd, 2)}`,
          ]),
        );
      });
    });
}
