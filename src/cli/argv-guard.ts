// Refuses secrets on the command line: argv is visible to every user of the machine (ps, /proc)
// and lands in shell history. The check runs before any parsing or database access.
import { AppError } from '../lib/errors.js';

const SECRET_SHAPES: readonly RegExp[] = [
  /sk-ant-[a-z]+\d*-/i, // Anthropic API and admin keys
  /\btg_[A-Za-z0-9]{20,}/, // Tollgate gateway keys
  /\btga_[A-Za-z0-9]{20,}/, // Tollgate admin tokens
  /\bgh[pousr]_[A-Za-z0-9]{20,}/, // GitHub tokens
  /\bgithub_pat_[A-Za-z0-9_]{20,}/,
  /\blin_(api|oauth)_[A-Za-z0-9]{20,}/, // Linear keys
  /\bxox[abprs]-[A-Za-z0-9-]{10,}/, // Slack tokens
];

const SECRET_OPTIONS = /^--(secret|api-key|apikey|token|password|passphrase|admin-token|master-key)(=|$)/;

const HOW = 'pass it on standard input, or with --from-env VAR or --from-file PATH';

/** Throws `secret_on_argv` when an argument looks like a secret or names a secret-carrying option. */
export function refuseSecretsOnArgv(argv: readonly string[]): void {
  for (const arg of argv) {
    if (SECRET_OPTIONS.test(arg)) {
      throw new AppError(
        'secret_on_argv',
        `${arg.split('=')[0]} is not accepted: secrets on the command line are visible in the process list and shell history; ${HOW}`,
      );
    }
    if (SECRET_SHAPES.some((shape) => shape.test(arg))) {
      throw new AppError(
        'secret_on_argv',
        `an argument looks like a secret and was refused (secrets on the command line are visible in the process list and shell history); ${HOW}`,
      );
    }
  }
}
