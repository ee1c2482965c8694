// Reading, planning and writing a Claude Code settings file (project or managed). The merge is pure
// (settings.ts); this module adds the file system: read the old text, write the new one atomically.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError } from '../lib/errors.js';
import { keyHelperCommand } from './helper-command.js';
import {
  type ManagedSettings,
  mergeSettings,
  parseSettings,
  renderSettings,
  type SettingsObject,
} from './settings.js';

/** Enterprise managed-settings files; they win over every other settings file. */
export const MANAGED_SETTINGS_FILES: Readonly<Partial<Record<NodeJS.Platform, string>>> = {
  linux: '/etc/claude-code/managed-settings.json',
  darwin: '/Library/Application Support/ClaudeCode/managed-settings.json',
  win32: 'C:\\Program Files\\ClaudeCode\\managed-settings.json',
};

/** The absolute path of bin/tollgate.js in this installation of Tollgate (from src/ or dist/ alike). */
export const CLI_PATH = fileURLToPath(new URL('../../bin/tollgate.js', import.meta.url));

export function projectSettingsFile(projectDir: string): string {
  return join(projectDir, '.claude', 'settings.json');
}

/** The managed settings for a profile: Tollgate's URL, the key helper, the model and the deny rules. */
export function settingsFor(p: {
  baseUrl: string;
  profile: string;
  model: string;
  deny: readonly string[];
  nodePath: string;
}): ManagedSettings {
  return {
    baseUrl: p.baseUrl,
    apiKeyHelper: keyHelperCommand({ nodePath: p.nodePath, cliPath: CLI_PATH, profile: p.profile }),
    model: p.model,
    deny: p.deny,
  };
}

export interface SettingsPlan {
  readonly file: string;
  /** The file's text now; null when it does not exist. */
  readonly before: string | null;
  readonly after: string;
  readonly changed: boolean;
  readonly warnings: readonly string[];
}

export interface SettingsSource {
  readonly file: string;
  /** The file's text now; null when it does not exist. */
  readonly before: string | null;
  readonly existing: SettingsObject;
}

/** Reads and parses a settings file (missing = empty); refuses a file that is not a JSON object. */
export async function readSettings(file: string): Promise<SettingsSource> {
  const before = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw fsError(error, file, 'read');
  });
  return { file, before, existing: parseSettings(before ?? '', file) };
}

/** What writing `desired` over `source` would produce. */
export function planFrom(source: SettingsSource, desired: ManagedSettings): SettingsPlan {
  const { settings, warnings } = mergeSettings(source.existing, desired);
  const after = renderSettings(settings);
  return { file: source.file, before: source.before, after, changed: source.before !== after, warnings };
}

/** What writing `desired` into `file` would produce; reads only. */
export async function planSettings(file: string, desired: ManagedSettings): Promise<SettingsPlan> {
  return planFrom(await readSettings(file), desired);
}

/** Writes the planned text (temp file + rename, keeping the old file's mode); nothing when unchanged. */
export async function writeSettings(plan: SettingsPlan): Promise<void> {
  if (!plan.changed) return;
  const dir = dirname(plan.file);
  try {
    await mkdir(dir, { recursive: true });
    const mode = await stat(plan.file).then(
      (s) => s.mode & 0o777,
      () => 0o644,
    );
    const temp = join(dir, `.${basename(plan.file)}.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(plan.after);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await chmod(temp, mode);
      await rename(temp, plan.file);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  } catch (error) {
    throw fsError(error as NodeJS.ErrnoException, plan.file, 'write');
  }
}

function fsError(error: NodeJS.ErrnoException, file: string, verb: string): AppError {
  if (error instanceof AppError) return error;
  const denied = error.code === 'EACCES' || error.code === 'EPERM';
  const message = denied
    ? `cannot ${verb} ${file}: permission denied${file.startsWith('/etc/') || file.startsWith('/Library/') ? ' (managed settings are system files: run this as root, e.g. with sudo)' : ''}`
    : `cannot ${verb} ${file} (${error.code ?? 'error'})`;
  return new AppError(denied ? 'forbidden' : 'invalid_input', message, {}, { cause: error });
}
