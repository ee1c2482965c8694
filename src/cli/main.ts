// The `tollgate` command line: parses argv, runs one command, maps errors to a one-line reason and an exit status.
import { Command, CommanderError } from 'commander';
import { AppError, EXIT_STATUS, isAppError } from '../lib/errors.js';
import { redactSecretShapes } from '../lib/redact-text.js';
import { VERSION } from '../version.js';
import { refuseSecretsOnArgv } from './argv-guard.js';
import { adminTokenCommand } from './commands/admin-token.js';
import { anthropicCommand } from './commands/anthropic.js';
import { auditCommand } from './commands/audit.js';
import { backupCommand, restoreCommand } from './commands/backup.js';
import { budgetCommand } from './commands/budget.js';
import { claudeCodeCommand } from './commands/claude-code.js';
import { coderCommand } from './commands/coder.js';
import { credentialCommand } from './commands/credential.js';
import { doctorCommand } from './commands/doctor.js';
import { initCommand } from './commands/init.js';
import { keyCommand } from './commands/key.js';
import { masterKeyCommand } from './commands/master-key.js';
import { profileCommand } from './commands/profile.js';
import { serveCommand } from './commands/serve.js';
import { statusCommand } from './commands/status.js';
import { teamCommand } from './commands/team.js';
import { usageCommand } from './commands/usage.js';
import { userCommand } from './commands/user.js';
import { type Io, processIo } from './io.js';
import { commandPath, globalsOf } from './runtime.js';

/**
 * Commands that run against a remote server with --server (product.md §4), and `claude-code setup`,
 * whose --server names the server to enroll with.
 */
const REMOTE_CAPABLE =
  /^(team \S+|user (add|list|show|update|remove|purge|login-link|disable|enable|sessions|logout)|budget \S+|credential (add|list|show|use|enable|disable|remove|rotate)|key \S+|profile \S+|usage|audit (list|verify)|admin-token (issue|list|revoke)|claude-code setup|anthropic (sync|limits show|limits sync))$/;

export function buildProgram(io: Io): Command {
  const program = new Command('tollgate')
    .description('Tollgate: key vault and spend gateway for the Claude API')
    .version(VERSION)
    .option('--json', 'machine-readable output')
    .option('--home <dir>', 'data directory (default $TOLLGATE_HOME or ./.tollgate)')
    .option(
      '--server <url>',
      'run against a remote Tollgate (default $TOLLGATE_SERVER), with TOLLGATE_ADMIN_TOKEN',
    )
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });
  for (const sub of [
    initCommand,
    serveCommand,
    statusCommand,
    doctorCommand,
    credentialCommand,
    teamCommand,
    userCommand,
    keyCommand,
    profileCommand,
    usageCommand,
    budgetCommand,
    auditCommand,
    coderCommand,
    claudeCodeCommand,
    adminTokenCommand,
    anthropicCommand,
    masterKeyCommand,
    backupCommand,
    restoreCommand,
  ]) {
    program.addCommand(sub(io));
  }
  // Subcommands inherit the error handling and output of the program.
  const inherit = (cmd: Command) => {
    for (const child of cmd.commands) {
      child
        .exitOverride()
        .configureOutput({ writeOut: (t) => io.stdout.write(t), writeErr: (t) => io.stderr.write(t) });
      inherit(child);
    }
  };
  inherit(program);
  // --server is a global option: commands that manage the installation's objects honour it; the
  // others work on the local database only and say so rather than silently ignoring it.
  program.hook('preAction', (_program, action) => {
    const path = commandPath(action);
    if (globalsOf(action).server !== undefined && !REMOTE_CAPABLE.test(path))
      throw new AppError(
        'invalid_input',
        `\`tollgate ${path}\` works on the local database only; run it on the server's machine, without --server`,
      );
  });
  return program;
}

/** Runs the CLI and returns the exit status; never calls process.exit. */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  try {
    refuseSecretsOnArgv(argv);
    await buildProgram(io).parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit with 0; usage errors were already printed by commander.
      return error.exitCode === 0 ? 0 : 2;
    }
    const appError = isAppError(error) ? error : new AppError('internal', describeUnexpected(error));
    io.stderr.write(`error: ${redactSecretShapes(appError.message)}\n`);
    return EXIT_STATUS[appError.code];
  }
}

function describeUnexpected(error: unknown): string {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string')
    return `unexpected failure (${error.code})`;
  return 'unexpected failure';
}
