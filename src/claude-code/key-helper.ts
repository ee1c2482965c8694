// `tollgate claude-code key-helper [--profile P]`: Claude Code's apiKeyHelper. Prints only the key and a
// newline. Claude Code runs it often, so it imports nothing but the key store (see key-helper-main.ts).
import { homedir } from 'node:os';
import { AppError, isAppError } from '../lib/errors.js';
import { configDirOf, createKeyStore, type Keychain, keyStoreModeOf } from './key-store.js';

export interface KeyHelperIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
}

const USAGE = 'usage: tollgate claude-code key-helper [--profile NAME]\n';
const SETUP_HINT =
  'run `tollgate claude-code setup --server URL --code CODE` (ask your Tollgate admin for a code)';

/** The stored key of `profile`, or of the only stored profile when none is named; refuses otherwise. */
export async function helperKey(
  profile: string | undefined,
  env: KeyHelperIo['env'],
  keychain: Keychain,
): Promise<string> {
  const store = createKeyStore({ mode: keyStoreModeOf(env), configDir: configDirOf(env, homedir), keychain });
  let chosen = profile;
  if (chosen === undefined) {
    const stored = await store.profiles();
    if (stored.length > 1)
      throw new AppError(
        'invalid_input',
        `keys are stored for several profiles (${stored.join(', ')}); pass --profile NAME`,
      );
    chosen = stored[0];
    if (chosen === undefined) throw new AppError('not_found', `no Tollgate key stored: ${SETUP_HINT}`);
  }
  const found = await store.load(chosen);
  if (!found) throw new AppError('not_found', `no Tollgate key stored for profile ${chosen}: ${SETUP_HINT}`);
  return found.key;
}

/** Parses `--profile NAME`, `--profile=NAME` and `--help`; anything else is a usage error. */
function parseArgs(args: readonly string[]): { profile?: string; help?: true } | null {
  const out: { profile?: string; help?: true } = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '-h' || arg === '--help') out.help = true;
    else if (arg === '--profile' && args[i + 1] !== undefined) out.profile = args[++i];
    else if (arg.startsWith('--profile=')) out.profile = arg.slice('--profile='.length);
    else return null;
  }
  return out;
}

/** Runs the helper from raw arguments; returns the exit status. The key goes to stdout only. */
export async function runKeyHelper(
  args: readonly string[],
  io: KeyHelperIo,
  keychain: Keychain,
): Promise<number> {
  const parsed = parseArgs(args);
  if (parsed === null) {
    io.stderr.write(USAGE);
    return 2;
  }
  if (parsed.help) {
    io.stdout.write(`${USAGE}Prints the stored Tollgate gateway key for Claude Code's apiKeyHelper.\n`);
    return 0;
  }
  try {
    io.stdout.write(`${await helperKey(parsed.profile, io.env, keychain)}\n`);
    return 0;
  } catch (error) {
    // Messages name profiles and paths, never a key.
    io.stderr.write(`error: ${isAppError(error) ? error.message : 'cannot read the stored key'}\n`);
    return 1;
  }
}
