// `tollgate team …` (local, or remote with --server)
import { Command } from 'commander';
import type { z } from 'zod/v4';
import { opById } from '../../api/admin/lookup.js';
import { teamOps, type teamSchema } from '../../api/admin/teams.ops.js';
import type { Io } from '../io.js';
import { byokOption, usdOption, usdOrNoneOption } from '../options.js';
import { printJson, printLines, printTable } from '../output.js';
import { withApi } from '../runtime.js';

type TeamJson = z.output<typeof teamSchema>;
const op = opById(teamOps);

export function teamCommand(io: Io): Command {
  const cmd = new Command('team').description('manage teams');

  cmd
    .command('add <name>')
    .description('create a team')
    .option('--monthly-budget <usd>', 'monthly spend limit of the whole team, in USD')
    .option('--byok <policy>', 'bring-your-own-key policy: preferred (default) or required')
    .action(async (name: string, opts: { monthlyBudget?: string; byok?: string }, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const team = await client.call<TeamJson>(op('teams.create'), {
          body: {
            name,
            ...(opts.monthlyBudget === undefined
              ? {}
              : { monthly_budget_usd: usdOption(opts.monthlyBudget, '--monthly-budget') }),
            ...(opts.byok === undefined ? {} : { byok: byokOption(opts.byok) }),
          },
        });
        if (json) return printJson(io, team);
        printLines(io, [
          `Added team ${team.name}${team.monthly_budget_usd === null ? '' : ` with a monthly budget of $${team.monthly_budget_usd}`}.`,
        ]);
      });
    });

  cmd
    .command('list')
    .description('list teams')
    .action(async (_opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const teams = await client.all<TeamJson>(op('teams.list'));
        if (json) return printJson(io, teams);
        printTable(
          io,
          ['name', 'members', 'monthly budget', 'byok', 'id'],
          teams.map((t) => [t.name, t.members, money(t.monthly_budget_usd), t.byok, t.id]),
        );
      });
    });

  cmd
    .command('update <name>')
    .description("change a team's monthly budget (none removes it) or bring-your-own-key policy")
    .option('--monthly-budget <usd>', 'monthly spend limit in USD, or none')
    .option('--byok <policy>', 'preferred or required')
    .action(async (name: string, opts: { monthlyBudget?: string; byok?: string }, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const team = await client.call<TeamJson>(op('teams.update'), {
          params: { team: name },
          body: {
            ...(opts.monthlyBudget === undefined
              ? {}
              : { monthly_budget_usd: usdOrNoneOption(opts.monthlyBudget, '--monthly-budget') }),
            ...(opts.byok === undefined ? {} : { byok: byokOption(opts.byok) }),
          },
        });
        if (json) return printJson(io, team);
        printLines(io, [
          `Updated team ${team.name}: monthly budget ${money(team.monthly_budget_usd)}, byok ${team.byok}.`,
        ]);
      });
    });

  return cmd;
}

function money(usd: string | null): string {
  return usd === null ? 'unlimited' : `$${usd}`;
}
