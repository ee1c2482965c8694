// `tollgate anthropic limits show|sync` (Tollgate's org cap and mapped teams' monthly budgets mirrored
// to Anthropic's spend limits, a beta) and `tollgate anthropic workspaces map|unmap` (team ↔ workspace).
import { Command } from 'commander';
import type { z } from 'zod/v4';
import {
  anthropicOps,
  type LimitJson,
  type limitsSchema,
  type limitsSyncSchema,
} from '../../api/admin/anthropic.ops.js';
import { opById } from '../../api/admin/lookup.js';
import { formatUsdFixed } from '../../lib/money.js';
import type { Io } from '../io.js';
import { printJson, printLines, printTable } from '../output.js';
import { withApi, withServices } from '../runtime.js';

const op = opById(anthropicOps);

export function limitsCommand(io: Io): Command {
  const cmd = new Command('limits').description(
    "mirror the org cap and mapped teams' monthly budgets to Anthropic spend limits (a beta; where the organisation has access)",
  );

  cmd
    .command('show')
    .description("Anthropic's monthly spend limits beside what Tollgate would set")
    .action(async (_opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const rows = (await client.call<z.output<typeof limitsSchema>>(op('anthropic.limits'))).limits;
        if (json) return printJson(io, rows);
        printTable(
          io,
          ['scope', 'team', 'anthropic', 'tollgate', 'difference', 'sync would'],
          rows.map(limitRow),
        );
      });
    });

  cmd
    .command('sync')
    .description('set the Anthropic spend limits that differ from Tollgate (rounded down to the cent)')
    .action(async (_opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const result = await client.call<z.output<typeof limitsSyncSchema>>(op('anthropic.limits.sync'), {
          body: {},
        });
        const changed = result.changed;
        if (json) return printJson(io, result);
        if (changed.length === 0) {
          return printLines(io, ["Nothing to change: Anthropic's spend limits match Tollgate's."]);
        }
        printLines(
          io,
          changed.map(
            (r) =>
              `Set the monthly spend limit of ${scopeLabel(r)} to ${cents(r.tollgate_amount_cents)}` +
              (r.anthropic_limit_set ? ` (was ${cents(r.anthropic_amount_cents)}).` : ' (none before).'),
          ),
        );
      });
    });

  return cmd;
}

/** `workspaces map TEAM WORKSPACE_ID` and `workspaces unmap TEAM`, added to the workspaces command. */
export function addWorkspaceMapping(workspaces: Command, io: Io): void {
  workspaces
    .command('map <team> <workspace_id>')
    .description(
      "map a Tollgate team to an Anthropic workspace (its monthly budget becomes the workspace's spend limit)",
    )
    .action(async (team: string, workspaceId: string, _opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, json, actor }) => {
        const mapped = await services.spendLimits.mapTeam(actor, team, workspaceId);
        if (json) return printJson(io, mapped);
        printLines(io, [`Team ${mapped.team} is mapped to Anthropic workspace ${mapped.workspaceId}.`]);
      });
    });

  workspaces
    .command('unmap <team>')
    .description('remove the mapping of a team to an Anthropic workspace')
    .action(async (team: string, _opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, json, actor }) => {
        const mapped = await services.spendLimits.mapTeam(actor, team, null);
        if (json) return printJson(io, mapped);
        printLines(io, [`Team ${mapped.team} is no longer mapped to an Anthropic workspace.`]);
      });
    });

  workspaces
    .command('mappings')
    .description('list the teams mapped to Anthropic workspaces')
    .action(async (_opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, json }) => {
        const rows = await services.spendLimits.mappings();
        if (json) return printJson(io, rows);
        printTable(
          io,
          ['team', 'workspace'],
          rows.map((r) => [r.team, r.workspaceId]),
        );
      });
    });
}

function scopeLabel(row: LimitJson): string {
  if (row.scope.type === 'organization') return 'the organisation';
  return `workspace ${row.scope.workspace_id}${row.team === null ? '' : ` (team ${row.team})`}`;
}

/** Integer cents as `$12.34`; null = Anthropic's explicit "no limit". */
function cents(amount: string | null | undefined): string {
  if (amount === undefined) return '—';
  if (amount === null) return 'no limit';
  return `$${formatUsdFixed(Number(amount) * 10_000, 2)}`;
}

function limitRow(row: LimitJson): string[] {
  const difference =
    row.difference_cents === null
      ? '—'
      : `${row.difference_cents > 0 ? '+' : row.difference_cents < 0 ? '-' : ''}${cents(String(Math.abs(row.difference_cents)))}`;
  const action = {
    create: 'set',
    update: 'update',
    none: 'nothing',
    unmanaged: 'leave (no Tollgate budget)',
  }[row.action];
  return [
    row.scope.type === 'organization' ? 'organization' : `workspace ${row.scope.workspace_id}`,
    row.team ?? '—',
    row.anthropic_limit_set ? cents(row.anthropic_amount_cents) : '—',
    row.tollgate_amount_cents === null ? '—' : cents(row.tollgate_amount_cents),
    difference,
    action,
  ];
}
