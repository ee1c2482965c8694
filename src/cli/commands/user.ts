// `tollgate user …` (local, or remote with --server)
import { Command } from 'commander';
import type { z } from 'zod/v4';
import { opById } from '../../api/admin/lookup.js';
import {
  type purgedUserSchema,
  type removedUserSchema,
  userOps,
  type userSchema,
} from '../../api/admin/users.ops.js';
import type { UserRole } from '../../db/schema.js';
import { USER_ROLES } from '../../identity/user.service.js';
import { oneOf, validateEmail, validateName } from '../../lib/validate.js';
import type { Io } from '../io.js';
import { byokOption, usdOption, usdOrNoneOption } from '../options.js';
import { printJson, printLines, printTable } from '../output.js';
import { withApi } from '../runtime.js';
import { addSignInCommands } from './user-sign-in.js';

type UserJson = z.output<typeof userSchema>;
type RemovedJson = z.output<typeof removedUserSchema>;
type PurgedJson = z.output<typeof purgedUserSchema>;
const op = opById(userOps);

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
    .option(
      '--byok <policy>',
      "the user's bring-your-own-key policy: preferred or required (default: the team's)",
    )
    .action(
      async (
        name: string,
        opts: { email?: string; role: string; team?: string; monthlyBudget?: string; byok?: string },
        command: Command,
      ) => {
        // Checked here first so the messages name the options (and nothing is opened for a typo).
        validateName('user', name);
        const role = roleOption(opts.role);
        if (opts.email !== undefined) validateEmail(opts.email);
        const body = {
          name,
          email: opts.email ?? null,
          role,
          team: opts.team ?? null,
          ...(opts.monthlyBudget === undefined
            ? {}
            : { monthly_budget_usd: usdOption(opts.monthlyBudget, '--monthly-budget') }),
          ...(opts.byok === undefined ? {} : { byok: byokOption(opts.byok) }),
        };
        await withApi(io, command, async ({ client, json }) => {
          const user = await client.call<UserJson>(op('users.create'), { body });
          if (json) return printJson(io, user);
          printLines(io, [
            `Added ${user.role} ${user.name}${user.team ? ` to team ${user.team}` : ''}; monthly budget ${money(user.monthly_budget_usd)}.`,
          ]);
        });
      },
    );

  cmd
    .command('list')
    .description('list users')
    .option('--team <team>')
    .option('--role <role>', USER_ROLES.join('|'))
    .action(async (opts: { team?: string; role?: string }, command: Command) => {
      const query = {
        ...(opts.team ? { team: opts.team } : {}),
        ...(opts.role === undefined ? {} : { role: roleOption(opts.role) }),
      };
      await withApi(io, command, async ({ client, json }) => {
        const users = await client.all<UserJson>(op('users.list'), { query });
        if (json) return printJson(io, users);
        printTable(
          io,
          ['name', 'role', 'team', 'email', 'monthly budget', 'keys'],
          users.map((u) => [u.name, u.role, u.team, u.email, money(u.monthly_budget_usd), u.active_keys]),
        );
      });
    });

  cmd
    .command('show <name>')
    .description('show one user')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const user = await client.call<UserJson>(op('users.get'), { params: { user: name } });
        if (json) return printJson(io, user);
        printLines(io, describe(user));
      });
    });

  cmd
    .command('update <name>')
    .description(
      "change a user's email, role, team, monthly budget, bring-your-own-key policy or key ceiling",
    )
    .option('--email <email>', 'new email address, or none')
    .option('--role <role>', USER_ROLES.join('|'))
    .option('--team <team>', 'team name, or none')
    .option('--monthly-budget <usd>', 'monthly spend limit in USD, or none')
    .option('--byok <policy>', "preferred, required, or inherit (the team's policy)")
    .option(
      '--key-ceiling <profile>',
      'the key profile bounding the keys they may issue themselves, or none (the default ceiling)',
    )
    .action(
      async (
        name: string,
        opts: {
          email?: string;
          role?: string;
          team?: string;
          monthlyBudget?: string;
          byok?: string;
          keyCeiling?: string;
        },
        command: Command,
      ) => {
        const body = {
          ...(opts.email === undefined
            ? {}
            : { email: isNone(opts.email) ? null : validateEmail(opts.email) }),
          ...(opts.role === undefined ? {} : { role: roleOption(opts.role) }),
          ...(opts.team === undefined ? {} : { team: isNone(opts.team) ? null : opts.team }),
          ...(opts.monthlyBudget === undefined
            ? {}
            : { monthly_budget_usd: usdOrNoneOption(opts.monthlyBudget, '--monthly-budget') }),
          ...(opts.byok === undefined
            ? {}
            : { byok: opts.byok.trim().toLowerCase() === 'inherit' ? null : byokOption(opts.byok) }),
          ...(opts.keyCeiling === undefined
            ? {}
            : { key_ceiling: isNone(opts.keyCeiling) ? null : opts.keyCeiling }),
        };
        await withApi(io, command, async ({ client, json }) => {
          const user = await client.call<UserJson>(op('users.update'), { params: { user: name }, body });
          if (json) return printJson(io, user);
          printLines(io, [`Updated user ${user.name}.`, ...describe(user)]);
        });
      },
    );

  cmd
    .command('remove <name>')
    .description('remove a user: revokes all their gateway keys and destroys their own credentials')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const result = await client.call<RemovedJson>(op('users.remove'), { params: { user: name } });
        if (json) return printJson(io, result);
        printLines(io, [
          `Removed user ${result.name}: ${result.revoked_keys} key(s) revoked, ${result.removed_credentials} credential(s) destroyed.`,
        ]);
      });
    });

  cmd
    .command('purge <name>')
    .description(
      "erase a person's personal data (GDPR): name, email, sign-in, sessions, own credentials; usage and audit stay under a pseudonym",
    )
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const result = await client.call<PurgedJson>(op('users.purge'), { params: { user: name } });
        if (json) return printJson(io, result);
        printLines(io, [
          `Purged ${name}: now ${result.pseudonym} in usage and audit; ${result.revoked_keys} key(s) revoked, ${result.shredded_credentials} credential(s) shredded, ${result.ended_sessions} session(s) deleted.`,
        ]);
      });
    });

  addSignInCommands(cmd, io);
  return cmd;
}

function describe(user: UserJson): string[] {
  return [
    `name:           ${user.name}`,
    `id:             ${user.id}`,
    `role:           ${user.role}`,
    `team:           ${user.team ?? '-'}`,
    `email:          ${user.email ?? '-'}`,
    `monthly budget: ${money(user.monthly_budget_usd)}`,
    `active keys:    ${user.active_keys}`,
    `byok:           ${user.byok ?? "the team's policy"}`,
    `preferred model: ${user.preferred_model ?? '-'}`,
    `disabled:       ${user.disabled_at ?? 'no'}`,
    `password set:   ${user.password_set ? 'yes' : 'no'}`,
    `single sign-on: ${user.sso ? 'yes' : 'no'}`,
    `key ceiling:    ${user.key_ceiling ?? 'the default'}`,
  ];
}

function roleOption(text: string): UserRole {
  return oneOf<UserRole>('--role', text, USER_ROLES);
}

function isNone(text: string): boolean {
  return text.trim().toLowerCase() === 'none';
}

function money(usd: string | null): string {
  return usd === null ? 'unlimited' : `$${usd}`;
}
