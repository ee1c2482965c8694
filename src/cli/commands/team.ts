// `tollgate team …`
import { Command } from 'commander';
import { formatUsd, parseUsd } from '../../lib/money.js';
import type { Io } from '../io.js';
import { isoTime, printJson, printLines, printTable } from '../output.js';
import { withServices } from '../runtime.js';

export function teamCommand(io: Io): Command {
  const cmd = new Command('team').description('manage teams');

  cmd
    .command('add <name>')
    .description('create a team')
    .option('--monthly-budget <usd>', 'monthly spend limit of the whole team, in USD')
    .action(async (name: string, opts: { monthlyBudget?: string }, command: Command) => {
      const budget =
        opts.monthlyBudget === undefined ? null : parseUsd(opts.monthlyBudget, '--monthly-budget');
      await withServices(io, command, async ({ services, actor, json }) => {
        const team = await services.teams.add(actor, { name, monthlyBudgetMicro: budget });
        if (json) return printJson(io, teamJson(team));
        printLines(io, [
          `Added team ${team.name}${budget === null ? '' : ` with a monthly budget of $${formatUsd(budget)}`}.`,
        ]);
      });
    });

  cmd
    .command('list')
    .description('list teams')
    .action(async (_opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, json }) => {
        const teams = await services.teams.list();
        if (json) return printJson(io, teams.map(teamJson));
        printTable(
          io,
          ['name', 'members', 'monthly budget', 'id'],
          teams.map((t) => [
            t.name,
            t.members,
            t.monthlyBudgetMicro === null ? 'unlimited' : `$${formatUsd(t.monthlyBudgetMicro)}`,
            t.id,
          ]),
        );
      });
    });

  return cmd;
}

function teamJson(t: {
  id: string;
  name: string;
  members: number;
  monthlyBudgetMicro: number | null;
  createdAt: number;
}) {
  return {
    id: t.id,
    name: t.name,
    members: t.members,
    monthly_budget_usd: t.monthlyBudgetMicro === null ? null : formatUsd(t.monthlyBudgetMicro),
    created_at: isoTime(t.createdAt),
  };
}
