// `tollgate credential …`: the encrypted vault of upstream secrets.
import { Command } from 'commander';
import type { Environment, Provider } from '../../db/schema.js';
import { parseDuration } from '../../lib/duration.js';
import { oneOf } from '../../lib/validate.js';
import { type CredentialView, ENVIRONMENTS, PROVIDERS, parseOwner } from '../../vault/credential.service.js';
import type { Io } from '../io.js';
import { isoTime, printJson, printLines, printTable, shortTime } from '../output.js';
import { withServices } from '../runtime.js';
import { readSecret } from '../secret-input.js';
import { addBundleCommands } from './credential-bundle.js';
import { addImportSecretsCommand } from './credential-import-secrets.js';

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
      const provider = oneOf<Provider>('--provider', opts.provider, PROVIDERS);
      const owner = parseOwner(opts.owner);
      const environment = opts.env ? oneOf<Environment>('--env', opts.env, ENVIRONMENTS) : null;
      await withServices(io, command, async ({ services, actor, json }) => {
        const secret = await readSecret(io, opts, `Secret for ${name}: `);
        const view = await services.credentials.add(actor, {
          name,
          provider,
          owner,
          environment,
          secret,
          validate: opts.validate,
        });
        if (json) return printJson(io, credentialJson(view));
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
    .action(async (opts: { provider?: string; owner?: string }, command: Command) => {
      await withServices(io, command, async ({ services, actor, json }) => {
        await services.credentials.retireDue(actor);
        const views = await services.credentials.list({
          ...(opts.provider ? { provider: oneOf<Provider>('--provider', opts.provider, PROVIDERS) } : {}),
          ...(opts.owner ? { owner: parseOwner(opts.owner) } : {}),
        });
        if (json) return printJson(io, views.map(credentialJson));
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
            shortTime(v.createdAt),
          ]),
        );
      });
    });

  cmd
    .command('show <name>')
    .description('show one credential (never its secret)')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, json }) => {
        const view = await services.credentials.show(name);
        if (json) return printJson(io, credentialJson(view));
        printDetails(io, view);
      });
    });

  const simple: Array<[string, string, 'use' | 'enable' | 'disable', string]> = [
    ['use <name>', "prefer this credential over its owner's others (no restart needed)", 'use', 'Now using'],
    ['enable <name>', 'make a disabled credential usable again', 'enable', 'Enabled'],
    ['disable <name>', 'stop using a credential without deleting it', 'disable', 'Disabled'],
  ];
  for (const [spec, description, method, verb] of simple) {
    cmd
      .command(spec)
      .description(description)
      .action(async (name: string, _opts: unknown, command: Command) => {
        await withServices(io, command, async ({ services, actor, json }) => {
          const view = await services.credentials[method](actor, name);
          if (json) return printJson(io, credentialJson(view));
          printLines(io, [`${verb} credential ${view.name} (${view.hint}).`]);
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
    .action(
      async (
        name: string,
        opts: { fromEnv?: string; fromFile?: string; validate: boolean; grace?: string },
        command: Command,
      ) => {
        const grace = opts.grace ? parseDuration(opts.grace, '--grace') : null;
        await withServices(io, command, async ({ services, actor, json }) => {
          await services.credentials.show(name);
          const secret = await readSecret(io, opts, `New secret for ${name}: `);
          const view = await services.credentials.rotate(actor, name, secret, opts.validate, grace);
          if (json)
            return printJson(io, {
              ...credentialJson(view),
              grace_until: grace ? isoTime(Date.now() + grace) : null,
            });
          printLines(io, [
            `Rotated credential ${view.name}: now ${view.hint}.`,
            grace
              ? `The previous secret stays usable as ${view.name}.previous (failover only) until ${shortTime(Date.now() + grace)}, then it is destroyed.`
              : 'The previous secret is no longer used.',
          ]);
        });
      },
    );

  cmd
    .command('remove <name>')
    .description('delete a credential and destroy its encrypted secret')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await withServices(io, command, async ({ services, actor, json }) => {
        const removed = await services.credentials.remove(actor, name);
        if (json) return printJson(io, { ...removed, removed: true });
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

function credentialJson(v: CredentialView) {
  return {
    id: v.id,
    name: v.name,
    provider: v.provider,
    owner: v.owner,
    environment: v.environment,
    status: v.status,
    preferred: v.preferred,
    hint: v.hint,
    created_at: isoTime(v.createdAt),
    updated_at: isoTime(v.updatedAt),
    last_used_at: isoTime(v.lastUsedAt),
    rotated_at: isoTime(v.rotatedAt),
    retire_at: isoTime(v.retireAt),
  };
}

function printDetails(io: Io, v: CredentialView): void {
  printLines(io, [
    `name:        ${v.name}`,
    `id:          ${v.id}`,
    `provider:    ${v.provider}`,
    `owner:       ${v.owner}`,
    `environment: ${v.environment ?? 'any'}`,
    `status:      ${v.status}${v.preferred ? ' (in use)' : ''}`,
    `hint:        ${v.hint}`,
    `created:     ${shortTime(v.createdAt)}`,
    `last used:   ${shortTime(v.lastUsedAt)}`,
    `rotated:     ${shortTime(v.rotatedAt)}`,
  ]);
}
