// `tollgate budget set|clear|list` (local, or remote with --server)
import { Command } from 'commander';
import type { z } from 'zod/v4';
import { budgetOps, type budgetSchema, type clearedBudgetSchema } from '../../api/admin/budgets.ops.js';
import { opById } from '../../api/admin/lookup.js';
import { BUDGET_PERIODS } from '../../budgets/budget.service.js';
import type { BudgetPeriod, BudgetScope } from '../../db/schema.js';
import { AppError } from '../../lib/errors.js';
import { oneOf } from '../../lib/validate.js';
import type { Io } from '../io.js';
import { usdOption } from '../options.js';
import { printJson, printLines, printTable } from '../output.js';
import { withApi } from '../runtime.js';

type BudgetJson = z.output<typeof budgetSchema>;
type ClearedJson = z.output<typeof clearedBudgetSchema>;
const op = opById(budgetOps);

interface SelectorOptions {
  org?: boolean;
  team?: string;
  user?: string;
  key?: string;
}

/** The scope one of --org, --team, --user, --key names; exactly one is required unless `optional`. */
function selector(opts: SelectorOptions, optional: boolean): { scope: BudgetScope; target?: string } | null {
  const given: { scope: BudgetScope; target?: string }[] = [];
  if (opts.org) given.push({ scope: 'org' });
  if (opts.team !== undefined) given.push({ scope: 'team', target: opts.team });
  if (opts.user !== undefined) given.push({ scope: 'user', target: opts.user });
  if (opts.key !== undefined) given.push({ scope: 'key', target: opts.key });
  if (given.length > 1 || (given.length === 0 && !optional))
    throw new AppError(
      'invalid_input',
      `give exactly one of --org, --team T, --user U or --key ID${optional ? ' (or none for every budget)' : ''}`,
    );
  return given[0] ?? null;
}

function withSelector(command: Command): Command {
  return command
    .option('--org', 'the whole organisation')
    .option('--team <team>', 'a team (name or id)')
    .option('--user <user>', 'a user (name or id)')
    .option('--key <id>', 'a gateway key (its id; the budget is shared with its rotations)');
}

function periodOption(text: string | undefined): BudgetPeriod {
  if (text === undefined) throw new AppError('invalid_input', '--period is required (day, month or total)');
  return oneOf<BudgetPeriod>('--period', text, BUDGET_PERIODS);
}

export function budgetCommand(io: Io): Command {
  const cmd = new Command('budget').description('manage spend limits of the org, teams, users and keys');

  withSelector(cmd.command('set'))
    .description('set a spend limit for a period')
    .option('--period <period>', BUDGET_PERIODS.join('|'))
    .option('--usd <amount>', 'the limit in USD')
    .action(async (opts: SelectorOptions & { period?: string; usd?: string }, command: Command) => {
      const target = selector(opts, false);
      const period = periodOption(opts.period);
      if (opts.usd === undefined) throw new AppError('invalid_input', '--usd is required (the limit in USD)');
      const body = { ...target, period, limit_usd: usdOption(opts.usd, '--usd') };
      await withApi(io, command, async ({ client, json }) => {
        const budget = await client.call<BudgetJson>(op('budgets.set'), { body });
        if (json) return printJson(io, budget);
        printLines(io, [
          `Set the ${PERIOD_WORD[budget.period]} budget of ${label(budget)} to $${budget.limit_usd} (spent $${budget.spent_usd}, remaining $${budget.remaining_usd}).`,
        ]);
      });
    });

  withSelector(cmd.command('clear'))
    .description('remove a spend limit (no limit for that period then)')
    .option('--period <period>', BUDGET_PERIODS.join('|'))
    .action(async (opts: SelectorOptions & { period?: string }, command: Command) => {
      const target = selector(opts, false);
      const query = { ...target, period: periodOption(opts.period) };
      await withApi(io, command, async ({ client, json }) => {
        const cleared = await client.call<ClearedJson>(op('budgets.clear'), { query });
        if (json) return printJson(io, cleared);
        printLines(io, [
          cleared.removed
            ? `Cleared the ${PERIOD_WORD[cleared.period]} budget of ${label(cleared)}.`
            : `${capitalised(label(cleared))} had no ${PERIOD_WORD[cleared.period]} budget; nothing changed.`,
        ]);
      });
    });

  withSelector(cmd.command('list'))
    .description('list budgets with what is spent, reserved and remaining in the current period')
    .action(async (opts: SelectorOptions, command: Command) => {
      const query = selector(opts, true) ?? {};
      await withApi(io, command, async ({ client, json }) => {
        const budgets = await client.all<BudgetJson>(op('budgets.list'), { query });
        if (json) return printJson(io, budgets);
        printTable(
          io,
          ['scope', 'target', 'period', 'limit', 'spent', 'reserved', 'remaining', 'source'],
          budgets.map((b) => [
            b.scope,
            b.target,
            b.period,
            `$${b.limit_usd}`,
            `$${b.spent_usd}`,
            `$${b.reserved_usd}`,
            `$${b.remaining_usd}`,
            b.source,
          ]),
        );
      });
    });

  return cmd;
}

const PERIOD_WORD: Record<BudgetPeriod, string> = { day: 'daily', month: 'monthly', total: 'all-time' };

function label(b: { scope: BudgetScope; target: string | null }): string {
  return b.scope === 'org' ? 'the organisation' : `${b.scope} ${b.target}`;
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
