// `tollgate user …`
import { Command } from 'commander';
import type { UserRole } from '../../db/schema.js';
import { USER_ROLES, type UserView } from '../../identity/user.service.js';
import { formatUsd, parseUsd } from '../../lib/money.js';
import { oneOf } from '../../lib/validate.js';
import type { Io } from '../io.js';
import { isoTime, printJson, printLines, printTable } from '../output.js';
import { withServices } from '../runtime.js';

export function userCommand(io: Io): Command {
  const cmd = new Command('user').description('manage users and service accounts');

  cmd
    .command('add <name>')
    .description(
      'create a user (the configured per-coder monthly budget applies unless --monthly-budget is given)',
    )
    .option('--email <email>')
    .option('--role <role>', USER_ROLES.join('|'), 'member')
    .option('--team <team>')
    .option('--monthly-budget <usd>', 'monthly spend limit in USD')
    .action(
      async (
        name: string,
        opts: { email?: string; role: string; team?: string; monthlyBudget?: string },
        command: Command,
      ) => {
        const role = oneOf<UserRole>('--role', opts.role, USER_ROLES);
        const budget =
          opts.monthlyBudget === undefined ? undefined : parseUsd(opts.monthlyBudget, '--monthly-budget');
        await withServices(io, command, async ({ services, actor, json }) => {
          const user = await services.users.add(actor, {
            name,
            email: opts.email ?? null,
            role,
            team: opts.team ?? null,
            ...(budget === undefined ? {} : { monthlyBudgetMicro: budget }),
          });
          if (json) return printJson(io, userJson(user));
          printLines(io, [
            `Added ${user.role} ${user.name}${user.team ? ` to team ${user.team}` : ''}; monthly budget ${money(user.monthlyBudgetMicro)}.`,
          ]);
        });
      },
    );

  cmd
    .command('list')
    .description('list users')
    .option('--team <team>')
    .action(async (opts: { team?: string }, command: Command) => {
      await withServices(io, command, async ({ services, json }) => {
        const users = await services.users.list(opts.team ? { team: opts.team } : {});
        if (json) return printJson(io, users.map(userJson));
        printTable(
          io,
          ['name', 'role', 'team', 'email', 'monthly budget', 'keys'],
          users.map((u) => [u.name, u.role, u.team, u.email, money(u.monthlyBudgetMicro), u.activeKeys]),
        );
      });
    });

  cmd
    .command('show <name>')
    .description('show one user')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, json }) => {
        const user = await services.users.show(name);
        if (json) return printJson(io, userJson(user));
        printLines(io, [
          `name:           ${user.name}`,
          `id:             ${user.id}`,
          `role:           ${user.role}`,
          `team:           ${user.team ?? '-'}`,
          `email:          ${user.email ?? '-'}`,
          `monthly budget: ${money(user.monthlyBudgetMicro)}`,
          `active keys:    ${user.activeKeys}`,
        ]);
      });
    });

  cmd
    .command('remove <name>')
    .description('remove a user: revokes all their gateway keys and destroys their own credentials')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, actor, json }) => {
        const result = await services.users.remove(actor, name);
        if (json)
          return printJson(io, {
            id: result.id,
            name,
            removed: true,
            revoked_keys: result.revokedKeys,
            removed_credentials: result.removedCredentials,
          });
        printLines(io, [
          `Removed user ${name}: ${result.revokedKeys} key(s) revoked, ${result.removedCredentials} credential(s) destroyed.`,
        ]);
      });
    });

  return cmd;
}

function money(micro: number | null): string {
  return micro === null ? 'unlimited' : `$${formatUsd(micro)}`;
}

function userJson(u: UserView) {
  return {
    id: u.id,
    name: u.name,
    email: u.email,
    role: u.role,
    team: u.team,
    monthly_budget_usd: u.monthlyBudgetMicro === null ? null : formatUsd(u.monthlyBudgetMicro),
    active_keys: u.activeKeys,
    created_at: isoTime(u.createdAt),
  };
}
