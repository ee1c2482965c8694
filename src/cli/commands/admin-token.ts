// `tollgate admin-token …`: the installation's admin token (`rotate`, on the local database only) and
// personal admin API tokens of admin users (`issue`, `list`, `revoke`: local, or remote with --server).
import { Command } from 'commander';
import type { z } from 'zod/v4';
import type { adminTokenSchema, issuedAdminTokenSchema } from '../../api/admin/admin-tokens.ops.js';
import { adminTokenOps } from '../../api/admin/admin-tokens.ops.js';
import { opById } from '../../api/admin/lookup.js';
import type { Io } from '../io.js';
import { printJson, printLines, printTable, shortTime } from '../output.js';
import { withApi, withServices } from '../runtime.js';

type TokenJson = z.output<typeof adminTokenSchema>;
type IssuedJson = z.output<typeof issuedAdminTokenSchema>;
const op = opById(adminTokenOps);

export function adminTokenCommand(io: Io): Command {
  const cmd = new Command('admin-token').description(
    'admin API tokens: the installation token and personal tokens',
  );

  cmd
    .command('rotate')
    .description(
      "replace the installation's admin token: the new one is printed once, the old one stops at once",
    )
    .action(async (_opts: unknown, command: Command) => {
      // Local only (withServices refuses --server): whoever holds the master key can always recover
      // admin access, and a leaked token cannot rotate the real administrators out.
      await withServices(io, command, async ({ services, actor, json }) => {
        const { token, hint } = await services.adminTokens.rotateInstallation(actor);
        if (json) return printJson(io, { admin_token: token });
        printLines(io, [
          `Rotated the installation's admin token (${hint}); the old one no longer works.`,
          '',
          'New admin token (shown only this once; store it in a password manager):',
          '',
          `  ${token}`,
        ]);
      });
    });

  cmd
    .command('issue')
    .description('issue a personal admin API token to an admin user (audited as admin:NAME); printed once')
    .requiredOption('--user <user>', 'the admin user who will hold it')
    .option('--name <name>', 'a label, e.g. the script that uses it')
    .action(async (opts: { user: string; name?: string }, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const issued = await client.call<IssuedJson>(op('adminTokens.issue'), {
          body: { user: opts.user, ...(opts.name === undefined ? {} : { name: opts.name }) },
        });
        if (json) return printJson(io, issued);
        printLines(io, [
          `Issued admin token ${issued.id} (${issued.hint}) to ${issued.user}; its actions are audited as admin:${issued.user}.`,
          '',
          'Token (shown only this once):',
          '',
          `  ${issued.token}`,
        ]);
      });
    });

  cmd
    .command('list')
    .description('list personal admin tokens (hints only, never the tokens)')
    .option('--user <user>', 'only the tokens of this user')
    .action(async (opts: { user?: string }, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const tokens = await client.all<TokenJson>(op('adminTokens.list'), {
          query: opts.user === undefined ? {} : { user: opts.user },
        });
        if (json) return printJson(io, tokens);
        printTable(
          io,
          ['id', 'user', 'name', 'hint', 'status', 'created', 'last used'],
          tokens.map((t) => [
            t.id,
            t.user,
            t.name,
            t.hint,
            t.status,
            shortTime(Date.parse(t.created_at)),
            t.last_used_at === null ? null : shortTime(Date.parse(t.last_used_at)),
          ]),
        );
      });
    });

  cmd
    .command('revoke <id>')
    .description('revoke a personal admin token; it stops at once')
    .action(async (id: string, _opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const token = await client.call<TokenJson>(op('adminTokens.revoke'), { params: { id } });
        if (json) return printJson(io, token);
        printLines(io, [`Revoked admin token ${token.id} (${token.hint}) of ${token.user}.`]);
      });
    });

  return cmd;
}
