// `tollgate key …`: gateway keys for users and services (local, or remote with --server).
import { Command } from 'commander';
import type { z } from 'zod/v4';
import { type issuedKeySchema, keyOps, type keySchema } from '../../api/admin/keys.ops.js';
import { opById } from '../../api/admin/lookup.js';
import type { Environment } from '../../db/schema.js';
import { parseModels, parseScopes, parseTools } from '../../keys/key-policy.js';
import { parseDuration } from '../../lib/duration.js';
import { AppError } from '../../lib/errors.js';
import { oneOf, parsePositiveInt } from '../../lib/validate.js';
import { ENVIRONMENTS } from '../../vault/credential.service.js';
import type { Io } from '../io.js';
import { usdOption, usdOrNoneOption } from '../options.js';
import { printJson, printLines, printTable, shortTime } from '../output.js';
import { withApi } from '../runtime.js';

type KeyJson = z.output<typeof keySchema>;
type IssuedJson = z.output<typeof issuedKeySchema>;
const op = opById(keyOps);

/** The policy options shared by `key issue` and `profile add`. */
export interface PolicyOptions {
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
  scopes?: string;
}

/** Adds the policy options to a command (`key issue`, `profile add`). */
export function withPolicyOptions(cmd: Command): Command {
  return cmd
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
    .option('--scopes <list>', 'inference,self-service,act-for-users (default inference)');
}

/**
 * The policy fields of a request body from the options given, each checked here so the message names
 * its option; an option not given is left out (with a profile, the profile's value then applies).
 */
export function policyBody(o: PolicyOptions): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const int = (text: string | undefined, field: string, what: string) => {
    if (text !== undefined) body[field] = parsePositiveInt(what, text);
  };
  const usd = (text: string | undefined, field: string, what: string) => {
    if (text !== undefined) body[field] = usdOption(text, what);
  };
  if (o.models !== undefined) body.models = parseModels(o.models);
  if (o.tools !== undefined) body.tools = parseTools(o.tools);
  int(o.maxTokens, 'max_tokens', '--max-tokens');
  usd(o.monthlyBudget, 'monthly_budget_usd', '--monthly-budget');
  usd(o.dailyBudget, 'daily_budget_usd', '--daily-budget');
  usd(o.maxCostPerRequest, 'max_cost_per_request_usd', '--max-cost-per-request');
  int(o.rpm, 'rpm', '--rpm');
  int(o.tpm, 'tpm', '--tpm');
  int(o.outputTpm, 'output_tpm', '--output-tpm');
  int(o.concurrency, 'concurrency', '--concurrency');
  if (o.expires !== undefined) {
    parseDuration(o.expires, '--expires');
    body.expires = o.expires;
  }
  if (o.env !== undefined) body.env = oneOf<Environment>('--env', o.env, ENVIRONMENTS);
  if (o.scopes !== undefined) body.scopes = parseScopes(o.scopes);
  return body;
}

interface IssueOptions extends PolicyOptions {
  user: string;
  name?: string;
  credential?: string;
  profile?: string;
}

export function keyCommand(io: Io): Command {
  const cmd = new Command('key').description('issue and manage gateway keys (tg_…)');

  withPolicyOptions(
    cmd
      .command('issue')
      .description('issue a gateway key; it is shown once and stored only as a keyed hash')
      .requiredOption('--user <user>', 'the user or service the key belongs to')
      .option('--name <name>')
      .option('--profile <profile>', 'start from this key profile; options given override it'),
  )
    .option('--credential <name>', 'pin an anthropic credential')
    .action(async (opts: IssueOptions, command: Command) => {
      const body = {
        user: opts.user,
        ...(opts.name === undefined ? {} : { name: opts.name }),
        ...(opts.profile === undefined ? {} : { profile: opts.profile }),
        ...policyBody(opts),
        ...(opts.credential === undefined ? {} : { credential: opts.credential }),
      };
      await withApi(io, command, async ({ client, json }) => {
        const issued = await client.call<IssuedJson>(op('keys.issue'), { body });
        if (json) return printJson(io, issued);
        printIssued(io, issued, 'Issued');
      });
    });

  cmd
    .command('list')
    .description('list gateway keys (hints only)')
    .option('--user <user>')
    .option('--status <status>', 'active|revoked|expired')
    .action(async (opts: { user?: string; status?: string }, command: Command) => {
      const query = {
        ...(opts.user ? { user: opts.user } : {}),
        ...(opts.status ? { status: oneOf('--status', opts.status, ['active', 'revoked', 'expired']) } : {}),
      };
      await withApi(io, command, async ({ client, json }) => {
        const keys = await client.all<KeyJson>(op('keys.list'), { query });
        if (json) return printJson(io, keys);
        printTable(
          io,
          ['id', 'user', 'name', 'status', 'hint', 'scopes', 'expires', 'created'],
          keys.map((k) => [
            k.id,
            k.user,
            k.name,
            k.status,
            k.hint,
            k.scopes.join(','),
            short(k.expires_at),
            short(k.created_at),
          ]),
        );
      });
    });

  cmd
    .command('show <id>')
    .description('show a gateway key and its policy')
    .action(async (id: string, _opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const key = await client.call<KeyJson>(op('keys.get'), { params: { key: id } });
        if (json) return printJson(io, key);
        printLines(io, describe(key));
      });
    });

  cmd
    .command('revoke <id>')
    .description('revoke a gateway key (a running server refuses it within a second)')
    .action(async (id: string, _opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const key = await client.call<KeyJson>(op('keys.revoke'), { params: { key: id } });
        if (json) return printJson(io, key);
        printLines(io, [`Revoked ${key.id} (${key.hint}) of ${key.user}.`]);
      });
    });

  cmd
    .command('rotate <id>')
    .description('issue a replacement with the same policy; the old key stops now or after --grace')
    .option('--grace <duration>', 'keep the old key working for this long, e.g. 24h')
    .action(async (id: string, opts: { grace?: string }, command: Command) => {
      const grace = opts.grace ? parseDuration(opts.grace, '--grace') : null;
      await withApi(io, command, async ({ client, json }) => {
        const issued = await client.call<IssuedJson & { replaces: string }>(op('keys.rotate'), {
          params: { key: id },
          body: opts.grace ? { grace: opts.grace } : {},
        });
        if (json) return printJson(io, issued);
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
      const changes: Array<{ period: 'month' | 'day'; limit_usd: string | null }> = [];
      if (opts.monthly !== undefined)
        changes.push({ period: 'month', limit_usd: usdOrNoneOption(opts.monthly, '--monthly') });
      if (opts.daily !== undefined)
        changes.push({ period: 'day', limit_usd: usdOrNoneOption(opts.daily, '--daily') });
      if (changes.length === 0) throw new AppError('invalid_input', 'give --monthly and/or --daily');
      await withApi(io, command, async ({ client, json }) => {
        let key = await client.call<KeyJson>(op('keys.get'), { params: { key: id } });
        for (const body of changes)
          key = await client.call<KeyJson>(op('keys.budget'), { params: { key: id }, body });
        if (json) return printJson(io, key);
        printLines(io, [
          `Budget of key lineage ${key.lineage} (every rotation of ${id}): monthly ${budgetText(key.monthly_budget_usd)}, daily ${budgetText(key.daily_budget_usd)}.`,
        ]);
      });
    });

  return cmd;
}

const budgetText = (usd: string | null) => (usd === null ? 'unlimited' : `$${usd}`);

/** An ISO time of an answer, as the tables show times. */
const short = (iso: string | null) => (iso === null ? '-' : shortTime(Date.parse(iso)));

function printIssued(io: Io, k: IssuedJson, verb: string): void {
  printLines(io, [
    `${verb} ${k.id} for ${k.user}. Copy the key now; it is not shown again:`,
    '',
    `  ${k.key}`,
    '',
  ]);
}

/** Budgets of a rotated key are its lineage's, shared with the keys before it. */
const shared = (k: KeyJson) => (k.lineage === k.id ? '' : ` (shared with its lineage ${k.lineage})`);

function describe(k: KeyJson): string[] {
  const or = (v: string | number | null, none = 'unlimited') => (v === null ? none : String(v));
  return [
    `id:                ${k.id}`,
    `user:              ${k.user}`,
    `name:              ${k.name ?? '-'}`,
    `status:            ${k.status}`,
    `hint:              ${k.hint}`,
    `scopes:            ${k.scopes.join(', ')}`,
    `models:            ${k.models?.join(', ') ?? 'all allowed'}`,
    `tools:             ${k.tools?.join(', ') ?? 'any'}`,
    `max tokens:        ${or(k.max_tokens)}`,
    `monthly budget:    ${budgetText(k.monthly_budget_usd)}${shared(k)}`,
    `daily budget:      ${budgetText(k.daily_budget_usd)}${shared(k)}`,
    `max cost/request:  ${budgetText(k.max_cost_per_request_usd)}`,
    `rate limits:       rpm ${or(k.rpm)}, input tpm ${or(k.input_tpm)}, output tpm ${or(k.output_tpm)}, concurrency ${or(k.concurrency)}`,
    `environment:       ${k.environment ?? 'any'}`,
    `credential:        ${k.credential ?? '(owner → team → org)'}`,
    `expires:           ${short(k.expires_at)}`,
    `created:           ${short(k.created_at)} by ${k.created_by}`,
  ];
}
