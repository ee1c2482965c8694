// `tollgate credential …`: the encrypted vault of upstream secrets (local, or remote with --server;
// export, import and import-secrets work on the local database only).
import { Command } from 'commander';
import type { z } from 'zod/v4';
import { credentialOps, type credentialSchema } from '../../api/admin/credentials.ops.js';
import { opById } from '../../api/admin/lookup.js';
import type { Environment, Provider } from '../../db/schema.js';
import { parseDuration } from '../../lib/duration.js';
import { oneOf } from '../../lib/validate.js';
import { ENVIRONMENTS, PROVIDERS, parseOwner } from '../../vault/credential.service.js';
import type { Io } from '../io.js';
import { printJson, printLines, printTable, shortTime } from '../output.js';
import { withApi } from '../runtime.js';
import { readSecret } from '../secret-input.js';
import { addBundleCommands } from './credential-bundle.js';
import { addImportSecretsCommand } from './credential-import-secrets.js';

type CredentialJson = z.output<typeof credentialSchema>;
const op = opById(credentialOps);
const STATUSES = ['active', 'inactive', 'invalid'] as const;

export function credentialCommand(io: Io): Command {
  const cmd = new Command('credential').description(
    'store, validate and manage upstream credentials (encrypted)',
  );

  cmd
    .command('add <name>')
    .description('add a credential; the secret is read from stdin, --from-env or --from-file')
    .requiredOption('--provider <provider>', `one of ${PROVIDERS.join(', ')}`)
    .option('--owner <owner>', 'org, team:NAME or user:NAME', 'org')
    .option('--env <environment>', `one of ${ENVIRONMENTS.join(', ')}`)
    .option('--from-env <var>', 'read the secret from this environment variable')
    .option('--from-file <path>', 'read the secret from this file')
    .option('--no-validate', 'store without checking the key with Anthropic')
    .action(async (name: string, opts: AddOptions, command: Command) => {
      // Options are checked before the secret is asked for, with messages that name them.
      const provider = oneOf<Provider>('--provider', opts.provider, PROVIDERS);
      ownerOption(opts.owner);
      const environment = opts.env ? oneOf<Environment>('--env', opts.env, ENVIRONMENTS) : null;
      await withApi(io, command, async ({ client, json }) => {
        const secret = await readSecret(io, opts, `Secret for ${name}: `);
        const view = await client.call<CredentialJson>(op('credentials.create'), {
          body: { name, provider, owner: opts.owner, environment, secret, validate: opts.validate },
        });
        if (json) return printJson(io, view);
        printLines(io, [
          `Added credential ${view.name} (${view.provider}, owner ${view.owner}${view.environment ? `, ${view.environment}` : ''}): ${view.hint}`,
          opts.validate
            ? 'The key was checked with Anthropic and is valid.'
            : 'The key was stored without validation (--no-validate).',
        ]);
      });
    });

  cmd
    .command('list')
    .description('list credentials (hints only, never secrets)')
    .option('--provider <provider>')
    .option('--owner <owner>', 'org, team:NAME or user:NAME')
    .option('--status <status>', STATUSES.join('|'))
    .option('--env <environment>', ENVIRONMENTS.join('|'))
    .action(async (opts: ListOptions, command: Command) => {
      const query = {
        ...(opts.provider ? { provider: oneOf<Provider>('--provider', opts.provider, PROVIDERS) } : {}),
        ...(opts.owner ? { owner: ownerOption(opts.owner) } : {}),
        ...(opts.status ? { status: oneOf('--status', opts.status, STATUSES) } : {}),
        ...(opts.env ? { env: oneOf<Environment>('--env', opts.env, ENVIRONMENTS) } : {}),
      };
      await withApi(io, command, async ({ client, json }) => {
        const views = await client.all<CredentialJson>(op('credentials.list'), { query });
        if (json) return printJson(io, views);
        printTable(
          io,
          ['name', 'provider', 'owner', 'env', 'status', 'in use', 'hint', 'created'],
          views.map((v) => [
            v.name,
            v.provider,
            v.owner,
            v.environment,
            v.status,
            v.preferred ? 'yes' : '',
            v.hint,
            short(v.created_at),
          ]),
        );
      });
    });

  cmd
    .command('show <name>')
    .description('show one credential (never its secret)')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const view = await client.call<CredentialJson>(op('credentials.get'), {
          params: { credential: name },
        });
        if (json) return printJson(io, view);
        printDetails(io, view);
      });
    });

  const simple: Array<[string, string, 'use' | 'enable' | 'disable', string]> = [
    ['use <name>', "prefer this credential over its owner's others (no restart needed)", 'use', 'Now using'],
    ['enable <name>', 'make a disabled credential usable again', 'enable', 'Enabled'],
    ['disable <name>', 'stop using a credential without deleting it', 'disable', 'Disabled'],
  ];
  for (const [spec, description, verb, done] of simple) {
    cmd
      .command(spec)
      .description(description)
      .action(async (name: string, _opts: unknown, command: Command) => {
        await withApi(io, command, async ({ client, json }) => {
          const view = await client.call<CredentialJson>(op(`credentials.${verb}`), {
            params: { credential: name },
          });
          if (json) return printJson(io, view);
          printLines(io, [`${done} credential ${view.name} (${view.hint}).`]);
        });
      });
  }

  cmd
    .command('rotate <name>')
    .description(
      'replace the secret of a credential; the new one is read from stdin, --from-env or --from-file',
    )
    .option('--from-env <var>')
    .option('--from-file <path>')
    .option('--no-validate', 'store without checking the new key with Anthropic')
    .option('--grace <duration>', 'keep the previous secret usable (as a failover) for this long, e.g. 24h')
    .option('--retire', "disable the old key through Anthropic's Admin API once the grace ends")
    .action(
      async (
        name: string,
        opts: { fromEnv?: string; fromFile?: string; validate: boolean; grace?: string; retire?: boolean },
        command: Command,
      ) => {
        if (opts.grace) parseDuration(opts.grace, '--grace');
        await withApi(io, command, async ({ client, json }) => {
          // An unknown name is refused before anyone is asked for a secret.
          await client.call(op('credentials.get'), { params: { credential: name } });
          const secret = await readSecret(io, opts, `New secret for ${name}: `);
          const view = await client.call<CredentialJson & { grace_until: string | null }>(
            op('credentials.rotate'),
            {
              params: { credential: name },
              body: {
                secret,
                validate: opts.validate,
                ...(opts.grace ? { grace: opts.grace } : {}),
                ...(opts.retire ? { retire: true } : {}),
              },
            },
          );
          if (json) return printJson(io, view);
          printLines(io, [
            `Rotated credential ${view.name}: now ${view.hint}.`,
            view.grace_until
              ? `The previous secret stays usable as ${view.name}.previous (failover only) until ${short(view.grace_until)}, then it is destroyed.`
              : 'The previous secret is no longer used.',
            ...(opts.retire
              ? [
                  `The old key will be disabled at Anthropic ${view.grace_until ? 'when the grace ends' : 'at the next retirement run'} ` +
                    '(by `tollgate serve`, or now with `tollgate anthropic keys retire-due`).',
                ]
              : []),
          ]);
        });
      },
    );

  cmd
    .command('remove <name>')
    .description('delete a credential and destroy its encrypted secret')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withApi(io, command, async ({ client, json }) => {
        const removed = await client.call<{ id: string; name: string; removed: true }>(
          op('credentials.remove'),
          { params: { credential: name } },
        );
        if (json) return printJson(io, removed);
        printLines(io, [`Removed credential ${removed.name}; its secret was destroyed.`]);
      });
    });

  addBundleCommands(cmd, io);
  addImportSecretsCommand(cmd, io);
  return cmd;
}

interface AddOptions {
  provider: string;
  owner: string;
  env?: string;
  fromEnv?: string;
  fromFile?: string;
  validate: boolean;
}

interface ListOptions {
  provider?: string;
  owner?: string;
  status?: string;
  env?: string;
}

/** `--owner`, checked here (the message names the owner) and sent on as typed. */
function ownerOption(text: string): string {
  parseOwner(text);
  return text;
}

/** An ISO time of an answer, as the tables show times. */
const short = (iso: string | null) => (iso === null ? '-' : shortTime(Date.parse(iso)));

function printDetails(io: Io, v: CredentialJson): void {
  printLines(io, [
    `name:        ${v.name}`,
    `id:          ${v.id}`,
    `provider:    ${v.provider}`,
    `owner:       ${v.owner}`,
    `environment: ${v.environment ?? 'any'}`,
    `status:      ${v.status}${v.preferred ? ' (in use)' : ''}`,
    `hint:        ${v.hint}`,
    `created:     ${short(v.created_at)}`,
    `last used:   ${short(v.last_used_at)}`,
    `rotated:     ${short(v.rotated_at)}`,
  ]);
}
