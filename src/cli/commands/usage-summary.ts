// `tollgate usage --summary`: the admin API's `usage.summary` (this UTC month per user and per model,
// savings, remaining budgets), printed as tables, or its JSON object with --json.
import type { Command } from 'commander';
import type { z } from 'zod/v4';
import { opById } from '../../api/admin/lookup.js';
import { usageSummaryOps, type usageSummarySchema } from '../../api/admin/usage-summary.ops.js';
import { AppError } from '../../lib/errors.js';
import type { Io } from '../io.js';
import { printJson, printLines, printTable } from '../output.js';
import { withApi } from '../runtime.js';
import type { UsageOptions } from './usage.js';

type SummaryJson = z.output<typeof usageSummarySchema>;
type Sums = SummaryJson['totals'];
const op = opById(usageSummaryOps);

const FILTERS = ['user', 'team', 'key', 'model', 'credential', 'since', 'until'] as const;

export async function usageSummary(io: Io, command: Command, opts: UsageOptions): Promise<void> {
  const given = FILTERS.filter((f) => opts[f] !== undefined).map((f) => `--${f}`);
  if (command.getOptionValueSource('by') === 'cli') given.push('--by');
  if (given.length > 0)
    throw new AppError(
      'invalid_input',
      `--summary covers this UTC month as a whole and takes no ${given.join(', ')}; use \`tollgate usage\` without --summary for those`,
    );
  await withApi(io, command, async ({ client, json }) => {
    const s = await client.call<SummaryJson>(op('usage.summary'));
    if (json) return printJson(io, s);
    const t = s.totals;
    printLines(io, [
      `Month to date: ${s.month} (UTC month, as budgets count it), ${s.since} to ${s.until}`,
      `Total: $${t.cost_usd} over ${t.requests} requests (${t.errors} failed); tokens in ${t.input_tokens}, out ${t.output_tokens}, cache write ${t.cache_write_5m_tokens + t.cache_write_1h_tokens}, cache read ${t.cache_read_tokens}; prompt caching saved $${t.saved_usd}.`,
      '',
      'By user:',
    ]);
    printTable(
      io,
      ['user', ...SUM_HEAD],
      s.by_user.map((u) => [u.user ?? u.user_id ?? '-', ...sumCells(u)]),
    );
    printLines(io, ['', 'By model:']);
    printTable(
      io,
      ['model', ...SUM_HEAD],
      s.by_model.map((m) => [m.model ?? '-', ...sumCells(m)]),
    );
    printLines(io, ['', 'Budgets (current UTC period):']);
    printTable(
      io,
      ['scope', 'target', 'period', 'limit (USD)', 'spent', 'reserved', 'remaining'],
      s.budgets.map((b) => [
        b.scope,
        b.target ?? '-',
        b.period,
        b.limit_usd,
        b.spent_usd,
        b.reserved_usd,
        b.remaining_usd,
      ]),
    );
  });
}

const SUM_HEAD = ['requests', 'input', 'output', 'cache write', 'cache read', 'saved (USD)', 'cost (USD)'];

function sumCells(s: Sums): Array<string | number> {
  return [
    s.requests,
    s.input_tokens,
    s.output_tokens,
    s.cache_write_5m_tokens + s.cache_write_1h_tokens,
    s.cache_read_tokens,
    s.saved_usd,
    s.cost_usd,
  ];
}
