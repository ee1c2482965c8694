// `tollgate anthropic workspaces …` and `tollgate anthropic keys …`: the organisation's Anthropic
// Admin API, through the org's `anthropic-admin` credential (local installation only for now).
import { Command } from 'commander';
import type { ApiKeyWithMatch } from '../../anthropic-admin/admin.service.js';
import { API_KEY_STATUSES, type Workspace } from '../../anthropic-admin/schemas.js';
import { oneOf } from '../../lib/validate.js';
import type { Io } from '../io.js';
import { printJson, printLines, printTable } from '../output.js';
import { withServices } from '../runtime.js';
import { claudeCodeCommand } from './anthropic-claude-code.js';
import { addWorkspaceMapping, limitsCommand } from './anthropic-limits.js';
import { addRetirementCommands } from './anthropic-retire.js';
import { addSyncCommand } from './anthropic-sync.js';

export function anthropicCommand(io: Io): Command {
  const cmd = new Command('anthropic').description(
    "the organisation's Anthropic Admin API (needs an anthropic-admin credential)",
  );
  cmd.addCommand(workspacesCommand(io));
  cmd.addCommand(keysCommand(io));
  addSyncCommand(io, cmd);
  cmd.addCommand(limitsCommand(io));
  cmd.addCommand(claudeCodeCommand(io));
  return cmd;
}

function workspacesCommand(io: Io): Command {
  const cmd = new Command('workspaces').description('list, create and archive Anthropic workspaces');

  cmd
    .command('list')
    .description("list the organisation's workspaces")
    .option('--archived', 'include archived workspaces')
    .action(async (opts: { archived?: boolean }, command: Command) => {
      await withServices(io, command, async ({ services, json }) => {
        const workspaces = await services.anthropicAdmin.listWorkspaces({
          includeArchived: opts.archived === true,
        });
        if (json) return printJson(io, workspaces);
        printTable(io, ['id', 'name', 'created', 'archived'], workspaces.map(workspaceRow));
      });
    });

  cmd
    .command('create <name>')
    .description('create a workspace (1 to 40 characters)')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, json, actor }) => {
        const workspace = await services.anthropicAdmin.createWorkspace(actor, name);
        if (json) return printJson(io, workspace);
        printLines(io, [`Created Anthropic workspace ${workspace.name} (${workspace.id}).`]);
      });
    });

  cmd
    .command('archive <id>')
    .description('archive a workspace (its API keys stop working; it cannot be undone)')
    .action(async (id: string, _opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, json, actor }) => {
        const workspace = await services.anthropicAdmin.archiveWorkspace(actor, id);
        if (json) return printJson(io, workspace);
        printLines(io, [`Archived Anthropic workspace ${workspace.name} (${workspace.id}).`]);
      });
    });

  addWorkspaceMapping(cmd, io);
  return cmd;
}

function keysCommand(io: Io): Command {
  const cmd = new Command('keys').description("list and disable the organisation's Anthropic API keys");

  cmd
    .command('list')
    .description('list Anthropic API keys, with the Tollgate credential each one is stored as')
    .option('--status <status>', 'active|inactive|archived')
    .option('--workspace <id>', 'only keys of this workspace (wrkspc_…)')
    .action(async (opts: { status?: string; workspace?: string }, command: Command) => {
      await withServices(io, command, async ({ services, json }) => {
        const keys = await services.anthropicAdmin.listApiKeys({
          ...(opts.status === undefined ? {} : { status: oneOf('--status', opts.status, API_KEY_STATUSES) }),
          ...(opts.workspace === undefined ? {} : { workspaceId: opts.workspace }),
        });
        if (json) return printJson(io, keys);
        printTable(
          io,
          ['id', 'name', 'status', 'workspace', 'hint', 'tollgate credential'],
          keys.map(keyRow),
        );
      });
    });

  cmd
    .command('disable <id>')
    .description('set an Anthropic API key inactive: Anthropic refuses it from then on')
    .action(async (id: string, _opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, json, actor }) => {
        const key = await services.anthropicAdmin.disableApiKey(actor, id);
        if (json) return printJson(io, key);
        const lines = [
          `Disabled Anthropic API key ${key.name} (${key.id}); its status is now ${key.status}.`,
        ];
        if (key.tollgate_credential !== null) {
          lines.push(
            `It is stored in Tollgate as credential ${key.tollgate_credential}; disable or remove it there too ` +
              '(`tollgate credential disable NAME`).',
          );
        }
        printLines(io, lines);
      });
    });

  addRetirementCommands(cmd, io);
  return cmd;
}

function workspaceRow(w: Workspace): string[] {
  return [w.id, w.name, w.created_at, w.archived_at ?? '—'];
}

function keyRow(k: ApiKeyWithMatch): string[] {
  return [
    k.id,
    k.name,
    k.status,
    k.workspace_id ?? '(default)',
    k.partial_key_hint ?? '—',
    k.tollgate_credential ?? '—',
  ];
}
