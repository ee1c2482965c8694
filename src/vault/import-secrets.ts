// `credential import-secrets`: moves the Claude keys of a legacy `.secrets.yml` into the vault through
// the ordinary add path (validated, sealed, audited) and remembers its non-secret Claude settings.
// The file is only read, never changed; no value from it is ever echoed except the non-secret settings.
import { open, readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { Provider } from '../db/schema.js';
import { type Actor, change, type ServiceContext } from '../install/context.js';
import { readMeta, writeMeta } from '../install/meta.repo.js';
import { AppError, type ErrorCode, isAppError } from '../lib/errors.js';
import { validateName } from '../lib/validate.js';
import type { CredentialService } from './credential.service.js';

export const MAX_SECRETS_FILE_BYTES = 1024 * 1024;

export const PLAINTEXT_ADVICE =
  'the file still holds the keys in plaintext: remove them from it (and from version control history) now that they are in the vault';

export interface ImportSecretsDeps {
  ctx: ServiceContext;
  credentials: Pick<CredentialService, 'add'>;
  /** The tollgate.yml in use (null when none) and the environment: an explicit default model wins. */
  configFile: string | null;
  env: Readonly<Record<string, string | undefined>>;
}

export interface ImportSecretsOptions {
  validate: boolean;
  namePrefix: string;
}

export interface ImportReport {
  file: string;
  imported: Array<{ field: string; name: string; provider: Provider; hint: string; validated: boolean }>;
  remembered: Array<{ field: string; setting: string; value: string }>;
  skipped: Array<{ field: string; name: string | null; reason: string }>;
  refused: Array<{ field: string; name: string; code: ErrorCode; reason: string }>;
  warnings: string[];
  advice: string | null;
}

const SECRET_FIELDS = [
  { field: 'org_api_key', provider: 'anthropic', name: 'org-api-key' },
  { field: 'admin_api_key', provider: 'anthropic-admin', name: 'org-admin-key' },
] as const;

const SETTING_FIELDS = [
  {
    field: 'default_model',
    meta: 'default_model',
    shape: /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/,
    expected: 'a model id such as claude-sonnet-4-6',
  },
  {
    field: 'workspace_id',
    meta: 'anthropic_workspace_id',
    shape: /^wrkspc_[A-Za-z0-9]{1,128}$/,
    expected: 'an Anthropic workspace id (wrkspc_…)',
  },
] as const;

/** Imports the `claude:` section of a `.secrets.yml`; refusals are reported per entry, never thrown. */
export async function importSecrets(
  deps: ImportSecretsDeps,
  by: Actor,
  file: string,
  options: ImportSecretsOptions,
): Promise<ImportReport> {
  for (const spec of SECRET_FIELDS) validateName('credential', `${options.namePrefix}${spec.name}`);
  const { claude, mode } = await readSecretsFile(file);
  const report: ImportReport = {
    file,
    imported: [],
    remembered: [],
    skipped: [],
    refused: [],
    warnings: [],
    advice: null,
  };
  if (process.platform !== 'win32' && (mode & 0o044) !== 0) {
    report.warnings.push(
      `${file} is readable by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}) and holds keys in plaintext; \`chmod 600\` it until the keys are removed`,
    );
  }

  for (const spec of SECRET_FIELDS) {
    const field = `claude.${spec.field}`;
    const name = `${options.namePrefix}${spec.name}`;
    const value = own(claude, spec.field);
    const unusable = unusableReason(value);
    if (unusable !== null || typeof value !== 'string') {
      report.skipped.push({ field, name, reason: unusable ?? 'not a string' });
      continue;
    }
    report.advice = PLAINTEXT_ADVICE;
    try {
      const view = await deps.credentials.add(by, {
        name,
        provider: spec.provider,
        owner: { type: 'org' },
        environment: null,
        secret: value,
        validate: options.validate,
      });
      report.imported.push({
        field,
        name,
        provider: spec.provider,
        hint: view.hint,
        validated: options.validate,
      });
    } catch (error) {
      if (!isAppError(error)) throw error;
      if (error.code === 'conflict') report.skipped.push({ field, name, reason: `exists: ${error.message}` });
      else report.refused.push({ field, name, code: error.code, reason: error.message });
    }
  }

  const toWrite: Array<{ field: string; setting: string; value: string }> = [];
  for (const spec of SETTING_FIELDS) {
    const field = `claude.${spec.field}`;
    const value = own(claude, spec.field);
    const unusable = unusableReason(value);
    if (unusable !== null || typeof value !== 'string') {
      report.skipped.push({ field, name: null, reason: unusable ?? 'not a string' });
    } else if (!spec.shape.test(value)) {
      report.skipped.push({ field, name: null, reason: `does not look like ${spec.expected}` });
    } else if (spec.field === 'default_model' && (await defaultModelConfigured(deps))) {
      report.skipped.push({
        field,
        name: null,
        reason: 'claude.default_model is already set by tollgate.yml or the environment; left as configured',
      });
    } else if ((await readMeta(deps.ctx.installation.db, spec.meta)) === value) {
      report.skipped.push({ field, name: null, reason: `already remembered (${value})` });
    } else {
      toWrite.push({ field, setting: spec.meta, value });
    }
  }
  if (toWrite.length > 0) await remember(deps.ctx, by, toWrite);
  report.remembered.push(...toWrite);
  return report;
}

async function remember(
  ctx: ServiceContext,
  by: Actor,
  settings: ReadonlyArray<{ setting: string; value: string }>,
): Promise<void> {
  await change(ctx, by, async (u) => {
    for (const { setting, value } of settings) await writeMeta(u.tx, setting, value);
    await u.audit(
      'org.import_settings',
      'org',
      ctx.installation.orgId,
      Object.fromEntries(settings.map(({ setting, value }) => [setting, value])),
    );
    await u.changed('org', ctx.installation.orgId);
  });
}

/** Why a value cannot be imported (absent, empty, a template placeholder, not text), or null when usable. */
export function unusableReason(value: unknown): string | null {
  if (value === undefined) return 'not in the file';
  if (value === null || (typeof value === 'string' && value.trim() === '')) return 'empty';
  if (typeof value !== 'string') return `not a string (${Array.isArray(value) ? 'a list' : typeof value})`;
  if (value.includes('…') || value.includes('...') || value.includes('<'))
    return 'a placeholder, not a value';
  return null;
}

/** True when tollgate.yml names claude.default_model or TOLLGATE_CLAUDE_DEFAULT_MODEL is set. */
export async function defaultModelConfigured(
  deps: Pick<ImportSecretsDeps, 'env' | 'configFile'>,
): Promise<boolean> {
  if ((deps.env.TOLLGATE_CLAUDE_DEFAULT_MODEL ?? '') !== '') return true;
  if (deps.configFile === null) return false;
  try {
    const doc = parseDocument(await readFile(deps.configFile, 'utf8'));
    const value: unknown = doc.getIn(['claude', 'default_model']);
    return value !== undefined && value !== null;
  } catch {
    // The loader already read this file; if it vanished since, do not override what it said.
    return true;
  }
}

type Tree = Record<string, unknown>;
// Own properties only, so a "__proto__" or "constructor" key cannot stand in for a missing field.
const own = (tree: Tree, key: string): unknown => (Object.hasOwn(tree, key) ? tree[key] : undefined);
const isTree = (value: unknown): value is Tree =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Reads and parses the file (bounded size, a mapping at the top); errors never quote its content. */
async function readSecretsFile(file: string): Promise<{ claude: Tree; mode: number }> {
  let text: string;
  let mode: number;
  try {
    const handle = await open(file, 'r');
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new AppError('invalid_input', `${file} is not a regular file`);
      if (info.size > MAX_SECRETS_FILE_BYTES) {
        throw new AppError('too_large', `${file} is larger than 1 MB; this is not a .secrets.yml`);
      }
      mode = info.mode;
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (cause) {
    if (isAppError(cause)) throw cause;
    const code = (cause as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new AppError(code === 'ENOENT' ? 'not_found' : 'invalid_input', `cannot read ${file} (${code})`);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const at = first.linePos?.[0];
    // Only the first line of the message: the rest quotes the file, which holds secrets.
    const message = first.message.split(' at line ')[0]?.split('\n')[0] ?? first.code;
    throw new AppError(
      'invalid_input',
      `${file}:${at?.line ?? '?'}:${at?.col ?? '?'}: YAML syntax error: ${message}; nothing was imported`,
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch {
    throw new AppError('invalid_input', `${file}: YAML aliases expand too far; nothing was imported`);
  }
  if (!isTree(value)) {
    throw new AppError('invalid_input', `${file}: expected a mapping of sections at the top level`);
  }
  const claude = value.claude;
  if (claude === undefined || claude === null) {
    throw new AppError('invalid_input', `${file} has no claude: section; nothing to import`);
  }
  if (!isTree(claude)) throw new AppError('invalid_input', `${file}: claude: expected a mapping`);
  return { claude, mode };
}
