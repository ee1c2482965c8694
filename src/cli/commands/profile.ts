// `tollgate profile …`: key profiles, named policy templates `key issue --profile` starts from
// (local, or remote with --server).
import { Command } from 'commander';
import type { z } from 'zod/v4';
import { opById } from '../../api/admin/lookup.js';
import { profileOps, type profileSchema } from '../../api/admin/profiles.ops.js';
import type { Io } from '../io.js';
import { printJson, printLines, printTable } from '../output.js';
import { withApi } from '../runtime.js';
import { type PolicyOptions, policyBody, withPolicyOptions } from './key.js';

type ProfileJson = z.output<typeof profileSchema>;
const op = opById(profileOps);

export function profileCommand(io: Io): Command {
  const cmd = new Command('profile').description(
    'named key policy templates (e.g. analysis / generation / admin) for `key issue --profile`',
  );

  withPolicyOptions(
    cmd
      .command('add <name>')
      .description(
        'add a key profile; options left out take the defaults of a plain key (no limit, scope inference)',
      )
      .option('--description <text>', 'what keys issued with it are for'),
  ).action(async (name: string, opts: PolicyOptions & { description?: string }, command: Command) => {
    const body = {
      name,
      ...(opts.description === undefined ? {} : { description: opts.description }),
      ...policyBody(opts),
    };
    await withApi(io, command, async ({ client, json }) => {
      const profile = await client.call<ProfileJson>(op('profiles.create'), { body });
      if (json) return printJson(io, profile);
      printLines(io, [`Added key profile ${profile.name}.`, ...describe(profile)]);
    });
  });

  cmd
    .command('list')
    .description('list key profiles')
    .action(async (_opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const profiles = await client.all<ProfileJson>(op('profiles.list'));
        if (json) return printJson(io, profiles);
        printTable(
          io,
          ['name', 'models', 'tools', 'scopes', 'monthly budget', 'expires', 'description'],
          profiles.map((p) => [
            p.name,
            p.models?.join(',') ?? 'all',
            p.tools?.join(',') ?? 'any',
            p.scopes.join(','),
            p.monthly_budget_usd === null ? 'unlimited' : `$${p.monthly_budget_usd}`,
            p.expires ?? 'never',
            p.description,
          ]),
        );
      });
    });

  cmd
    .command('show <name>')
    .description('show a key profile')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const profile = await client.call<ProfileJson>(op('profiles.get'), { params: { profile: name } });
        if (json) return printJson(io, profile);
        printLines(io, [
          `name:              ${profile.name}`,
          `id:                ${profile.id}`,
          ...describe(profile),
        ]);
      });
    });

  cmd
    .command('remove <name>')
    .description('delete a key profile (keys issued with it keep their policy)')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const removed = await client.call<{ id: string; name: string; removed: true }>(
          op('profiles.remove'),
          { params: { profile: name } },
        );
        if (json) return printJson(io, removed);
        printLines(io, [
          `Removed key profile ${removed.name}; keys issued with it keep the policy they were given.`,
        ]);
      });
    });

  return cmd;
}

function describe(p: ProfileJson): string[] {
  const or = (v: string | number | null, none = 'unlimited') => (v === null ? none : String(v));
  const usd = (v: string | null) => (v === null ? 'unlimited' : `$${v}`);
  return [
    `description:       ${p.description ?? '-'}`,
    `scopes:            ${p.scopes.join(', ')}`,
    `models:            ${p.models?.join(', ') ?? 'all allowed'}`,
    `tools:             ${p.tools?.join(', ') ?? 'any'}`,
    `max tokens:        ${or(p.max_tokens)}`,
    `monthly budget:    ${usd(p.monthly_budget_usd)}`,
    `daily budget:      ${usd(p.daily_budget_usd)}`,
    `max cost/request:  ${usd(p.max_cost_per_request_usd)}`,
    `rate limits:       rpm ${or(p.rpm)}, input tpm ${or(p.tpm)}, output tpm ${or(p.output_tpm)}, concurrency ${or(p.concurrency)}`,
    `environment:       ${p.env ?? 'any'}`,
    `expires after:     ${p.expires ?? 'never'}`,
  ];
}
