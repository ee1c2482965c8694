// `tollgate key …`: gateway keys for users and services.
import { Command } from 'commander';
import type { Environment } from '../../db/schema.js';
import type { IssuedKey, KeyView } from '../../keys/key.service.js';
import type { KeyPolicy } from '../../keys/key-policy.js';
import { parseModels, parseScopes, parseTools } from '../../keys/key-policy.js';
import { parseDuration } from '../../lib/duration.js';
import { AppError } from '../../lib/errors.js';
import { formatUsd, parseUsd } from '../../lib/money.js';
import { oneOf, parsePositiveInt } from '../../lib/validate.js';
import { ENVIRONMENTS } from '../../vault/credential.service.js';
import type { Io } from '../io.js';
import { isoTime, printJson, printLines, printTable, shortTime } from '../output.js';
import { withServices } from '../runtime.js';

interface IssueOptions {
  user: string;
  name?: string;
  models?: string;
  tools?: string;
  maxTokens?: string;
  monthlyBudget?: string;
  dailyBudget?: string;
  maxCostPerRequest?: string;
  rpm?: string;
  tpm?: string;
  outputTpm?: string;
  concurrency?: string;
  expires?: string;
  env?: string;
  credential?: string;
  scopes?: string;
}

/** Turns the options of `key issue` into a policy; every value is validated before anything is stored. */
function policyFromOptions(o: IssueOptions): Partial<KeyPolicy> {
  const usd = (text: string | undefined, what: string) => (text === undefined ? null : parseUsd(text, what));
  const int = (text: string | undefined, what: string) =>
    text === undefined ? null : parsePositiveInt(what, text);
  return {
    models: o.models ? parseModels(o.models) : null,
    tools: o.tools ? parseTools(o.tools) : null,
    maxTokens: int(o.maxTokens, '--max-tokens'),
    monthlyBudgetMicro: usd(o.monthlyBudget, '--monthly-budget'),
    dailyBudgetMicro: usd(o.dailyBudget, '--daily-budget'),
    maxCostPerRequestMicro: usd(o.maxCostPerRequest, '--max-cost-per-request'),
    rpm: int(o.rpm, '--rpm'),
    inputTpm: int(o.tpm, '--tpm'),
    outputTpm: int(o.outputTpm, '--output-tpm'),
    concurrency: int(o.concurrency, '--concurrency'),
    environment: o.env ? oneOf<Environment>('--env', o.env, ENVIRONMENTS) : null,
    scopes: o.scopes ? parseScopes(o.scopes) : ['inference'],
  };
}

export function keyCommand(io: Io): Command {
  const cmd = new Command('key').description('issue and manage gateway keys (tg_…)');

  cmd
    .command('issue')
    .description('issue a gateway key; it is shown once and stored only as a keyed hash')
    .requiredOption('--user <user>', 'the user or service the key belongs to')
    .option('--name <name>')
    .option('--models <a,b>', 'allowed models (bare or dated ids)')
    .option('--tools <t1,t2>', 'allowed tool names')
    .option('--max-tokens <n>', 'largest max_tokens a request may ask for')
    .option('--monthly-budget <usd>')
    .option('--daily-budget <usd>')
    .option('--max-cost-per-request <usd>', 'refuse requests whose worst-case cost exceeds this')
    .option('--rpm <n>', 'requests per rolling minute')
    .option('--tpm <n>', 'input tokens per minute')
    .option('--output-tpm <n>', 'output tokens per minute')
    .option('--concurrency <n>', 'requests in flight at once')
    .option('--expires <duration>', 'lifetime, e.g. 90d, 24h')
    .option('--env <environment>', ENVIRONMENTS.join('|'))
    .option('--credential <name>', 'pin an anthropic credential')
    .option('--scopes <list>', 'inference,self-service,act-for-users', 'inference')
    .action(async (opts: IssueOptions, command: Command) => {
      const policy = policyFromOptions(opts);
      const expiresInMs = opts.expires ? parseDuration(opts.expires, '--expires') : null;
      await withServices(io, command, async ({ services, actor, json }) => {
        const issued = await services.keys.issue(actor, {
          user: opts.user,
          name: opts.name ?? null,
          policy,
          expiresInMs,
          credential: opts.credential ?? null,
        });
        if (json) return printJson(io, { ...keyJson(issued), key: issued.key });
        printIssued(io, issued, 'Issued');
      });
    });

  cmd
    .command('list')
    .description('list gateway keys (hints only)')
    .option('--user <user>')
    .action(async (opts: { user?: string }, command: Command) => {
      await withServices(io, command, async ({ services, json }) => {
        const keys = await services.keys.list(opts.user ? { user: opts.user } : {});
        if (json) return printJson(io, keys.map(keyJson));
        printTable(
          io,
          ['id', 'user', 'name', 'status', 'hint', 'scopes', 'expires', 'created'],
          keys.map((k) => [
            k.id,
            k.user,
            k.name,
            k.status,
            k.hint,
            k.policy.scopes.join(','),
            shortTime(k.expiresAt),
            shortTime(k.createdAt),
          ]),
        );
      });
    });

  cmd
    .command('show <id>')
    .description('show a gateway key and its policy')
    .action(async (id: string, _opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, json }) => {
        const key = await services.keys.show(id);
        if (json) return printJson(io, keyJson(key));
        printLines(io, describe(key));
      });
    });

  cmd
    .command('revoke <id>')
    .description('revoke a gateway key (a running server refuses it within a second)')
    .action(async (id: string, _opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, actor, json }) => {
        const key = await services.keys.revoke(actor, id);
        if (json) return printJson(io, keyJson(key));
        printLines(io, [`Revoked ${key.id} (${key.hint}) of ${key.user}.`]);
      });
    });

  cmd
    .command('rotate <id>')
    .description('issue a replacement with the same policy; the old key stops now or after --grace')
    .option('--grace <duration>', 'keep the old key working for this long, e.g. 24h')
    .action(async (id: string, opts: { grace?: string }, command: Command) => {
      const grace = opts.grace ? parseDuration(opts.grace, '--grace') : null;
      await withServices(io, command, async ({ services, actor, json }) => {
        const issued = await services.keys.rotate(actor, id, grace);
        if (json) return printJson(io, { ...keyJson(issued), key: issued.key, replaces: id });
        printIssued(io, issued, 'Rotated: issued');
        printLines(io, [
          grace
            ? `The old key ${id} keeps working until ${shortTime(Date.now() + grace)}.`
            : `The old key ${id} is revoked.`,
        ]);
      });
    });

  cmd
    .command('budget <id>')
    .description(
      'set the budget of a key and every key rotated from or into it (they share one budget and its spend)',
    )
    .option('--monthly <usd>', 'monthly limit in USD, or "none" to remove it')
    .option('--daily <usd>', 'daily limit in USD, or "none" to remove it')
    .action(async (id: string, opts: { monthly?: string; daily?: string }, command: Command) => {
      const limit = (text: string, what: string) => (text === 'none' ? null : parseUsd(text, what));
      const changes: Array<['month' | 'day', number | null]> = [];
      if (opts.monthly !== undefined) changes.push(['month', limit(opts.monthly, '--monthly')]);
      if (opts.daily !== undefined) changes.push(['day', limit(opts.daily, '--daily')]);
      if (changes.length === 0) throw new AppError('invalid_input', 'give --monthly and/or --daily');
      await withServices(io, command, async ({ services, actor, json }) => {
        let key: KeyView = await services.keys.show(id);
        for (const [period, micro] of changes)
          key = await services.keys.setKeyBudget(actor, id, period, micro);
        if (json) return printJson(io, keyJson(key));
        const p = key.policy;
        printLines(io, [
          `Budget of key lineage ${key.lineageId} (every rotation of ${id}): monthly ${budgetText(p.monthlyBudgetMicro)}, daily ${budgetText(p.dailyBudgetMicro)}.`,
        ]);
      });
    });

  return cmd;
}

const budgetText = (micro: number | null) => (micro === null ? 'unlimited' : `$${formatUsd(micro)}`);

function printIssued(io: Io, k: IssuedKey, verb: string): void {
  printLines(io, [
    `${verb} ${k.id} for ${k.user}. Copy the key now; it is not shown again:`,
    '',
    `  ${k.key}`,
    '',
  ]);
}

const usd = (micro: number | null) => (micro === null ? null : formatUsd(micro));

function keyJson(k: KeyView) {
  const p = k.policy;
  return {
    id: k.id,
    name: k.name,
    user: k.user,
    user_id: k.userId,
    hint: k.hint,
    status: k.status,
    scopes: p.scopes,
    models: p.models,
    tools: p.tools,
    max_tokens: p.maxTokens,
    monthly_budget_usd: usd(p.monthlyBudgetMicro),
    daily_budget_usd: usd(p.dailyBudgetMicro),
    max_cost_per_request_usd: usd(p.maxCostPerRequestMicro),
    rpm: p.rpm,
    input_tpm: p.inputTpm,
    output_tpm: p.outputTpm,
    concurrency: p.concurrency,
    environment: p.environment,
    credential: k.credential,
    expires_at: isoTime(k.expiresAt),
    created_at: isoTime(k.createdAt),
    created_by: k.createdBy,
    revoked_at: isoTime(k.revokedAt),
    rotated_to: k.rotatedTo,
    lineage: k.lineageId,
    last_used_at: isoTime(k.lastUsedAt),
  };
}

/** Budgets of a rotated key are its lineage's, shared with the keys before it. */
const shared = (k: KeyView) => (k.lineageId === k.id ? '' : ` (shared with its lineage ${k.lineageId})`);

function describe(k: KeyView): string[] {
  const p = k.policy;
  const or = (v: string | number | null, none = 'unlimited') => (v === null ? none : String(v));
  return [
    `id:                ${k.id}`,
    `user:              ${k.user}`,
    `name:              ${k.name ?? '-'}`,
    `status:            ${k.status}`,
    `hint:              ${k.hint}`,
    `scopes:            ${p.scopes.join(', ')}`,
    `models:            ${p.models?.join(', ') ?? 'all allowed'}`,
    `tools:             ${p.tools?.join(', ') ?? 'any'}`,
    `max tokens:        ${or(p.maxTokens)}`,
    `monthly budget:    ${budgetText(p.monthlyBudgetMicro)}${shared(k)}`,
    `daily budget:      ${budgetText(p.dailyBudgetMicro)}${shared(k)}`,
    `max cost/request:  ${p.maxCostPerRequestMicro === null ? 'unlimited' : `$${formatUsd(p.maxCostPerRequestMicro)}`}`,
    `rate limits:       rpm ${or(p.rpm)}, input tpm ${or(p.inputTpm)}, output tpm ${or(p.outputTpm)}, concurrency ${or(p.concurrency)}`,
    `environment:       ${p.environment ?? 'any'}`,
    `credential:        ${k.credential ?? '(owner → team → org)'}`,
    `expires:           ${shortTime(k.expiresAt)}`,
    `created:           ${shortTime(k.createdAt)} by ${k.createdBy}`,
  ];
}
