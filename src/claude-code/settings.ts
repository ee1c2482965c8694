// The Claude Code settings Tollgate manages, merged into whatever a settings file already holds.
// Pure: no file system; the caller reads the old text and writes the new one.
import { AppError } from '../lib/errors.js';

/** What Tollgate sets in a Claude Code settings file. The gateway key itself is never part of it. */
export interface ManagedSettings {
  /** env.ANTHROPIC_BASE_URL: Tollgate's public URL. */
  readonly baseUrl: string;
  /** apiKeyHelper: a shell command that prints the gateway key. */
  readonly apiKeyHelper: string;
  readonly model: string;
  /** Added to permissions.deny; rules already there are kept. */
  readonly deny: readonly string[];
}

export type SettingsObject = Record<string, unknown>;

export interface MergeResult {
  readonly settings: SettingsObject;
  /** Problems in the existing file that Tollgate leaves alone but the person should fix. */
  readonly warnings: string[];
}

// Claude Code prefers these over apiKeyHelper, so a value here would bypass (or break) the gateway key.
const OVERRIDING_ENV = ['ANTHROPIC_AUTH_TOKEN', 'ANTHROPIC_API_KEY'] as const;

const isObject = (value: unknown): value is SettingsObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Parses a settings file's text; an empty file is an empty object. Refuses anything but a JSON object. */
export function parseSettings(text: string, file: string): SettingsObject {
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const detail = error instanceof SyntaxError ? error.message : 'unreadable';
    throw new AppError(
      'invalid_input',
      `${file} is not valid JSON (${detail}); fix it first, nothing was changed`,
    );
  }
  if (!isObject(value))
    throw new AppError('invalid_input', `${file} must hold a JSON object; fix it first, nothing was changed`);
  return value;
}

/** The settings file text: two-space JSON with a final newline, as Claude Code itself writes it. */
export function renderSettings(settings: SettingsObject): string {
  return `${JSON.stringify(settings, null, 2)}\n`;
}

/**
 * Sets Tollgate's keys in `existing` without losing anything else: unknown keys, other env variables and
 * the allow/ask lists stay where they are, deny rules are a union in first-seen order. Applying the
 * result again gives the same object, so re-running a command leaves the file byte-for-byte unchanged.
 */
export function mergeSettings(existing: SettingsObject, desired: ManagedSettings): MergeResult {
  const env = objectAt(existing, 'env', 'env');
  const permissions = objectAt(existing, 'permissions', 'permissions');
  const deny = permissions.deny ?? [];
  if (!Array.isArray(deny) || !deny.every((rule): rule is string => typeof rule === 'string'))
    throw new AppError('invalid_input', 'permissions.deny in the settings file must be a list of strings');

  const warnings = OVERRIDING_ENV.filter((name) => env[name] !== undefined).map(
    (name) =>
      `env.${name} is set in the settings file: Claude Code uses it instead of apiKeyHelper, so requests would not use the Tollgate key; remove it (and rotate it if it is a real secret in a committed file)`,
  );
  const merged = withEntries(existing, [
    ['env', withEntries(env, [['ANTHROPIC_BASE_URL', desired.baseUrl]])],
    ['apiKeyHelper', desired.apiKeyHelper],
    ['model', desired.model],
    ['permissions', withEntries(permissions, [['deny', [...new Set([...deny, ...desired.deny])]]])],
  ]);
  return { settings: merged, warnings };
}

function objectAt(settings: SettingsObject, key: string, label: string): SettingsObject {
  const value = settings[key];
  if (value === undefined) return {};
  if (!isObject(value))
    throw new AppError('invalid_input', `${label} in the settings file must be a JSON object`);
  return value;
}

/**
 * A copy of `base` with `updates` applied: existing keys keep their position, new ones are appended.
 * Built with Object.fromEntries (define, not assign), so a "__proto__" key in a file stays plain data.
 */
function withEntries(
  base: SettingsObject,
  updates: ReadonlyArray<readonly [string, unknown]>,
): SettingsObject {
  const entries = new Map<string, unknown>(Object.entries(base));
  for (const [key, value] of updates) entries.set(key, value);
  return Object.fromEntries(entries);
}
