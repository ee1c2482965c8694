// `tollgate user login-link|disable|enable|sessions|logout …`: how people sign in, managed by an admin
// (local, or remote with --server), through the same operations as the admin API.
import type { Command } from 'commander';
import type { z } from 'zod/v4';
import { opById } from '../../api/admin/lookup.js';
import {
  type endedSessionsSchema,
  type loginLinkSchema,
  type sessionSchema,
  signInOps,
} from '../../api/admin/sign-in.ops.js';
import type { userSchema } from '../../api/admin/users.ops.js';
import type { Io } from '../io.js';
import { printJson, printLines, printTable } from '../output.js';
import { withApi } from '../runtime.js';

type UserJson = z.output<typeof userSchema>;
type LinkJson = z.output<typeof loginLinkSchema>;
type SessionJson = z.output<typeof sessionSchema>;
type EndedJson = z.output<typeof endedSessionsSchema>;
const op = opById(signInOps);

/** Adds the sign-in subcommands to `tollgate user`. */
export function addSignInCommands(cmd: Command, io: Io): void {
  cmd
    .command('login-link <name>')
    .description('issue a single-use sign-in link (24 h) for setting a password; earlier links stop working')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const link = await client.call<LinkJson>(op('users.loginLink'), { params: { user: name } });
        if (json) return printJson(io, link);
        printLines(io, [
          `Sign-in link for ${link.user} (single use, until ${link.expires_at}):`,
          link.url,
          'Send it to them privately; anyone holding it can set their password.',
        ]);
      });
    });

  cmd
    .command('disable <name>')
    .description('disable a person: revokes their gateway keys and admin tokens, ends their sessions')
    .option('--reason <text>', 'recorded in the audit log (at most 200 characters)')
    .action(async (name: string, opts: { reason?: string }, command: Command) => {
      const body = opts.reason === undefined ? {} : { reason: opts.reason };
      await withApi(io, command, async ({ client, json }) => {
        const user = await client.call<UserJson>(op('users.disable'), { params: { user: name }, body });
        if (json) return printJson(io, user);
        printLines(io, [
          `Disabled ${user.name}: keys revoked, sessions ended; \`user enable\` lets them back.`,
        ]);
      });
    });

  cmd
    .command('enable <name>')
    .description('let a disabled person sign in again (revoked keys stay revoked)')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const user = await client.call<UserJson>(op('users.enable'), { params: { user: name } });
        if (json) return printJson(io, user);
        printLines(io, [`Enabled ${user.name}.`]);
      });
    });

  cmd
    .command('sessions <name>')
    .description("list a person's live dashboard sessions")
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const sessions = await client.all<SessionJson>(op('users.sessions.list'), { params: { user: name } });
        if (json) return printJson(io, sessions);
        printTable(
          io,
          ['id', 'method', 'opened', 'last seen', 'expires', 'ip', 'user agent'],
          sessions.map((s) => [
            s.id,
            s.method,
            s.created_at,
            s.last_seen_at,
            s.expires_at,
            s.ip,
            s.user_agent?.slice(0, 40) ?? null,
          ]),
        );
      });
    });

  cmd
    .command('logout <name>')
    .description('end every dashboard session of a person')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const ended = await client.call<EndedJson>(op('users.sessions.end'), { params: { user: name } });
        if (json) return printJson(io, ended);
        printLines(io, [`Ended ${ended.ended_sessions} session(s) of ${ended.user}.`]);
      });
    });
}
