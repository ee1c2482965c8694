// Shared plumbing of CLI commands: config, the opened installation, services, error reporting.
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { type Config, loadConfig } from '../config/load.js';
import type { Actor } from '../install/context.js';
import { type Installation, openInstallation } from '../install/installation.js';
import { systemClock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import { createServices, type Services } from '../services.js';
import { type ApiClient, localClient, remoteClient } from './client.js';
import type { Io } from './io.js';

export interface GlobalOptions {
  json?: boolean;
  home?: string;
  server?: string;
}

export interface CommandEnv {
  readonly io: Io;
  readonly config: Config;
  readonly json: boolean;
  readonly actor: Actor;
}

export interface ServiceEnv extends CommandEnv {
  readonly services: Services;
  readonly installation: Installation;
}

export function globalsOf(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

export async function commandEnv(io: Io, command: Command): Promise<CommandEnv> {
  const globals = globalsOf(command);
  const config = await loadConfig({
    env: io.env,
    cwd: io.cwd,
    overrides: globals.home ? { home: globals.home } : {},
  });
  return { io, config, json: globals.json === true, actor: { actor: `cli:${localUser()}` } };
}

/** Runs fn with the installation opened and the services built; always closes the database. */
export async function withServices<T>(
  io: Io,
  command: Command,
  fn: (env: ServiceEnv) => Promise<T>,
): Promise<T> {
  const env = await commandEnv(io, command);
  const installation = await openInstallation(env.config, {
    onWitnessError: (message) => io.stderr.write(`warning: ${message}\n`),
  });
  try {
    const services = createServices(installation, env.config, systemClock);
    return await fn({ ...env, services, installation });
  } finally {
    await installation.close();
  }
}

export interface ApiEnv {
  readonly io: Io;
  readonly json: boolean;
  readonly client: ApiClient;
}

/**
 * Runs fn with a client of the admin API's operations: remote when `--server` (or TOLLGATE_SERVER) is
 * given — no local home, config or master key needed —, else in-process on the local database.
 */
export async function withApi<T>(io: Io, command: Command, fn: (env: ApiEnv) => Promise<T>): Promise<T> {
  const globals = globalsOf(command);
  const json = globals.json === true;
  const server = globals.server ?? io.env.TOLLGATE_SERVER;
  if (server !== undefined && server !== '') {
    const token = io.env.TOLLGATE_ADMIN_TOKEN;
    if (!token)
      throw new AppError(
        'unauthenticated',
        'a remote server needs an admin token: set TOLLGATE_ADMIN_TOKEN (it is never taken from the command line)',
      );
    return fn({ io, json, client: remoteClient(server, token) });
  }
  return withServices(io, command, ({ services, installation, config, actor }) =>
    fn({
      io,
      json,
      client: localClient({
        services,
        installation,
        config,
        principal: { kind: 'local', actor: actor.actor },
        actor,
        requestId: 'cli',
        clientIp: 'local',
        now: systemClock,
        budgets: null,
        shared: {},
      }),
    }),
  );
}

/** `credential add`, `admin-token rotate`, … */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

function localUser(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return 'unknown';
  }
}
