// Shared plumbing of CLI commands: config, the opened installation, services, error reporting.
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { type Config, loadConfig } from '../config/load.js';
import type { Actor } from '../install/context.js';
import { type Installation, openInstallation } from '../install/installation.js';
import { systemClock } from '../lib/clock.js';
import { createServices, type Services } from '../services.js';
import type { Io } from './io.js';

export interface GlobalOptions {
  json?: boolean;
  home?: string;
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

function localUser(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return 'unknown';
  }
}
