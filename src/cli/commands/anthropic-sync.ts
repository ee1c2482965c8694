// `tollgate anthropic sync [--since DATE] [--until DATE]`: imports Anthropic's usage and cost reports and
// prints the reconciliation per UTC day × credential × model (on the local installation, or a server's with --server).
import type { Command } from 'commander';
import type { z } from 'zod/v4';
import { totalTokens } from '../../anthropic-admin/reconcile.js';
import { anthropicOps, type syncResultSchema } from '../../api/admin/anthropic.ops.js';
import { opById } from '../../api/admin/lookup.js';
import { formatUsd } from '../../lib/money.js';
import type { Io } from '../io.js';
import { printJson, printLines, printTable } from '../output.js';
import { withApi } from '../runtime.js';

type SyncJson = z.output<typeof syncResultSchema>;
type ReconcileRow = SyncJson['rows'][number];
const op = opById(anthropicOps);

const signedUsd = (micro: number | null) =>
  micro === null ? '(unpriced)' : micro > 0 ? `+${formatUsd(micro)}` : formatUsd(micro);
const signed = (n: number) => (n > 0 ? `+${n}` : String(n));

export function addSyncCommand(io: Io, anthropic: Command): void {
  anthropic
    .command('sync')
    .description("import Anthropic's usage and cost reports and reconcile them with Tollgate's ledger")
    .option('--since <date>', 'first UTC day (YYYY-MM-DD or RFC 3339; default 7 days before --until)')
    .option('--until <date>', 'end of the range (default one hour ago: the reports lag)')
    .action(async (opts: { since?: string; until?: string }, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const body: { since?: string; until?: string } = {};
        if (opts.since !== undefined) body.since = opts.since;
        if (opts.until !== undefined) body.until = opts.until;
        const result = await client.call<SyncJson>(op('anthropic.sync'), { body });
        if (json) return printJson(io, result);
        printLines(io, [
          `Imported ${result.imported.usage_rows} usage report rows and ${result.imported.cost_rows} cost report rows for ${result.since} to ${result.until}.`,
          result.imported.claude_code_rows === null
            ? 'Claude Code analytics: not available to this organisation (skipped).'
            : `Imported ${result.imported.claude_code_rows} Claude Code analytics rows.`,
        ]);
        printTable(
          io,
          [
            'day',
            'credential',
            'model',
            'tollgate tokens',
            'anthropic tokens',
            'drift tokens',
            'tollgate $',
            'anthropic $',
            'drift $',
            'flag',
          ],
          result.rows.map(tableRow),
        );
        printLines(io, [
          `Cost report total ${formatUsd(result.cost_report_micro_usd)}; Anthropic's usage priced by Tollgate ${formatUsd(result.priced_usage_micro_usd)}.`,
        ]);
      });
    });
}

function tableRow(r: ReconcileRow): string[] {
  const who = r.credential ?? `${r.api_key_name ?? '?'} (${r.api_key_id ?? 'no key'})`;
  return [
    r.day,
    who,
    r.model,
    String(totalTokens(r.tollgate)),
    String(totalTokens(r.anthropic)),
    signed(r.drift_tokens),
    formatUsd(r.tollgate.cost_micro_usd),
    r.anthropic.cost_micro_usd === null ? '(unpriced)' : formatUsd(r.anthropic.cost_micro_usd),
    signedUsd(r.drift_micro_usd),
    r.flag ?? '',
  ];
}
