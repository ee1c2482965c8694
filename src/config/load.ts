// Loads the configuration once: tollgate.yml, env:/file: references, environment and CLI overrides, then
// the schema. Every problem is collected and reported together, naming the file or variable and key path.
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { ZodIssue } from 'zod';
import { AppError } from '../lib/errors.js';
import { checkCaFile } from '../outbound/ca-file.js';
import type { FileConfig, KeyPath } from './schema.js';
import {
  CREDENTIAL_URL_KEYS,
  coerceText,
  configFileSchema,
  isSecretKey,
  isSensitiveKey,
  OVERRIDABLE_PATHS,
} from './schema.js';

export interface LoadConfigInput {
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  overrides?: { home?: string; host?: string; port?: number };
}

export type DatabaseConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/** Where the master key comes from; the crypto module decides precedence and reads the file. */
export interface MasterKeySource {
  /** TOLLGATE_MASTER_KEY (base64). */
  inline?: string;
  /** TOLLGATE_MASTER_KEY_FILE, absolute. */
  file?: string;
  /** $home/master.key */
  defaultFile: string;
}

type DeepReadonly<T> = T extends (infer U)[]
  ? ReadonlyArray<DeepReadonly<U>>
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

export type Config = DeepReadonly<
  Omit<FileConfig, 'database'> & {
    /** Data directory, absolute. */
    home: string;
    /** The tollgate.yml that was read, absolute; null when none. */
    configFile: string | null;
    masterKey: MasterKeySource;
    /** TOLLGATE_SERVER: a remote Tollgate for admin commands. */
    serverUrl: string | null;
    /** TOLLGATE_ADMIN_TOKEN */
    adminToken: string | null;
    database: DatabaseConfig;
  }
>;

type Tree = Record<string, unknown>;
type Path = Array<string | number>;

const SPECIFIC_VARIABLES: ReadonlyArray<readonly [string, Path]> = [
  ['TOLLGATE_HOST', ['server', 'host']],
  ['TOLLGATE_PORT', ['server', 'port']],
  ['TOLLGATE_DATABASE_URL', ['database', 'url']],
  ['TOLLGATE_REDIS_URL', ['redis', 'url']],
  ['TOLLGATE_UPSTREAM_URL', ['upstream', 'anthropic_base_url']],
  ['TOLLGATE_GITHUB_API_URL', ['integrations', 'github_api_url']],
  ['TOLLGATE_LINEAR_API_URL', ['integrations', 'linear_api_url']],
];

/** The usual variables, below every Tollgate setting (lower case wins over upper case, as in curl). */
const STANDARD_VARIABLES: ReadonlyArray<readonly [string, Path]> = [
  ['NO_PROXY', ['upstream', 'no_proxy']],
  ['no_proxy', ['upstream', 'no_proxy']],
];

const REFERENCE = /^(env|file):(.*)$/s;

/** Problems found so far, and what is needed to word them: who set each key, which values are secret. */
class Report {
  readonly lines: string[] = [];
  /** Key path → variable or flag that set it; keys not listed come from the file. */
  readonly setBy = new Map<string, string>();
  /** Keys that already have a problem reported. */
  readonly reported = new Set<string>();
  /** Keys whose value came from an env:/file: reference: treated as secret. */
  readonly resolved = new Set<string>();
  constructor(readonly file: string | null) {}

  add(path: KeyPath, message: string): void {
    const by = this.setBy.get(longestPrefix(path, (key) => this.setBy.has(key)) ?? '');
    const key = formatPath(path);
    this.lines.push(by ? `${by} (${key}): ${message}` : `${this.file ?? 'config'}: ${key}: ${message}`);
    this.reported.add(key);
  }

  isSecret(path: KeyPath): boolean {
    return isSensitiveKey(path) || longestPrefix(path, (key) => this.resolved.has(key)) !== undefined;
  }
}

function longestPrefix(path: KeyPath, test: (key: string) => boolean): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const key = formatPath(path.slice(0, n));
    if (test(key)) return key;
  }
  return undefined;
}

function formatPath(path: KeyPath): string {
  return path.reduce<string>(
    (out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${part}` : part),
    '',
  );
}

const isTree = (value: unknown): value is Tree =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const nonEmpty = (value: string | undefined): string | undefined => (value === '' ? undefined : value);

/** Loads, validates and freezes the configuration; throws AppError('invalid_config') listing every problem. */
export async function loadConfig(input: LoadConfigInput): Promise<Config> {
  const { env, cwd } = input;
  const home = resolve(cwd, input.overrides?.home ?? nonEmpty(env.TOLLGATE_HOME) ?? '.tollgate');
  const configFile = await locateConfigFile(env, cwd, home);
  const report = new Report(configFile);
  const tree = configFile ? await readYaml(configFile) : {};

  refuseInlineSecrets(tree, report);
  await resolveFileReferences(tree, configFile ? dirname(configFile) : cwd, env, report);
  await applyOverrides(tree, input, report);
  const serverUrl = nonEmpty(env.TOLLGATE_SERVER) ?? null;
  if (serverUrl !== null && !/^https?:\/\//.test(serverUrl))
    report.lines.push('TOLLGATE_SERVER: expected an http(s) URL');

  const parsed = configFileSchema.safeParse(tree);
  if (!parsed.success) reportIssues(parsed.error.issues, tree, report);
  // A relative ca_file is read against the working directory; a bad one stops the start, naming it.
  const caFile = parsed.success ? caFilePath(parsed.data.upstream.ca_file, cwd) : null;
  if (caFile !== null) {
    const problem = await checkCaFile(caFile);
    if (problem !== null) report.add(['upstream', 'ca_file'], problem);
  }
  if (report.lines.length > 0 || !parsed.success) {
    throw new AppError('invalid_config', report.lines.join('\n'), { problems: report.lines });
  }

  const masterKey: MasterKeySource = { defaultFile: join(home, 'master.key') };
  const inlineKey = nonEmpty(env.TOLLGATE_MASTER_KEY);
  const keyFile = nonEmpty(env.TOLLGATE_MASTER_KEY_FILE);
  if (inlineKey !== undefined) masterKey.inline = inlineKey;
  if (keyFile !== undefined) masterKey.file = resolve(cwd, keyFile);
  const config = {
    ...parsed.data,
    home,
    configFile,
    masterKey,
    serverUrl,
    adminToken: nonEmpty(env.TOLLGATE_ADMIN_TOKEN) ?? null,
    database: databaseConfig(parsed.data.database.url, home, cwd),
    // A relative witness path is read against the working directory, like a relative sqlite: path.
    audit: { witness_path: witnessPath(parsed.data.audit.witness_path, cwd) },
    upstream: { ...parsed.data.upstream, ca_file: caFile },
  };
  return deepFreeze(config);
}

async function locateConfigFile(
  env: LoadConfigInput['env'],
  cwd: string,
  home: string,
): Promise<string | null> {
  const named = nonEmpty(env.TOLLGATE_CONFIG);
  if (named !== undefined) return resolve(cwd, named);
  const candidate = join(home, 'tollgate.yml');
  const found = await stat(candidate).then(
    (s) => s.isFile(),
    () => false,
  );
  return found ? candidate : null;
}

async function readYaml(file: string): Promise<Tree> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new AppError('invalid_config', `${file}: cannot read the config file (${code})`, {}, { cause });
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const syntax = doc.errors.map((error) => {
    const at = error.linePos?.[0];
    // Only the first line of the message: the rest quotes the file, which may hold a secret.
    const message = error.message.split(' at line ')[0]?.split('\n')[0] ?? error.code;
    return `${file}:${at?.line ?? '?'}:${at?.col ?? '?'}: YAML syntax error: ${message}`;
  });
  if (syntax.length > 0) throw new AppError('invalid_config', syntax.join('\n'), { problems: syntax });
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch {
    throw new AppError('invalid_config', `${file}: YAML aliases expand too far`);
  }
  if (value === null || value === undefined) return {};
  if (!isTree(value))
    throw new AppError('invalid_config', `${file}: expected a mapping of sections at the top level`);
  // An empty section ("server:" with every key commented out) reads as null; treat it as {}.
  for (const [section, body] of Object.entries(value)) if (body === null) value[section] = {};
  return value;
}

function leaves(value: unknown, path: Path = []): Array<{ path: Path; value: unknown }> {
  if (Array.isArray(value)) return value.flatMap((item, i) => leaves(item, [...path, i]));
  if (isTree(value)) return Object.entries(value).flatMap(([key, item]) => leaves(item, [...path, key]));
  return [{ path, value }];
}

// Only own properties are followed, so a "__proto__" key in the file cannot reach Object.prototype.
function setAt(tree: Tree, path: KeyPath, value: unknown): void {
  let node = tree as Record<string | number, unknown>;
  for (const [i, part] of path.entries()) {
    if (i === path.length - 1) node[part] = value;
    else {
      if (!Object.hasOwn(node, part)) node[part] = {};
      node = node[part] as Record<string | number, unknown>;
    }
  }
}

function refuseInlineSecrets(tree: Tree, report: Report): void {
  for (const { path, value } of leaves(tree)) {
    if (typeof value !== 'string' || value === '' || REFERENCE.test(value)) continue;
    if (isSecretKey(path)) {
      report.add(path, 'secrets must be given as env:NAME or file:PATH, not inline');
    } else if (CREDENTIAL_URL_KEYS.includes(formatPath(path)) && hasPassword(value)) {
      report.add(path, 'a URL with a password must be given as env:NAME or file:PATH, not inline');
    }
  }
}

function hasPassword(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const parsed = new URL(url);
  return parsed.password !== '' || parsed.searchParams.has('password');
}

/** Resolves env:NAME and file:PATH; the message names the reference, never the value. */
async function dereference(text: string, baseDir: string, env: LoadConfigInput['env']): Promise<string> {
  const [, kind, target = ''] = REFERENCE.exec(text) ?? [];
  if (kind === 'env') {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(target)) throw new Error(`${text}: expected env:NAME`);
    const value = env[target];
    if (value === undefined)
      throw new Error(`environment variable ${target} (referenced as ${text}) is not set`);
    return value;
  }
  if (target === '') throw new Error('file: reference without a path');
  const path = resolve(baseDir, target);
  const content = await readFile(path, 'utf8').catch((cause: NodeJS.ErrnoException) => {
    throw new Error(`cannot read ${path} (referenced as ${text}): ${cause.code ?? 'unreadable'}`);
  });
  return content.replace(/\r?\n$/, '');
}

async function resolveFileReferences(
  tree: Tree,
  baseDir: string,
  env: LoadConfigInput['env'],
  report: Report,
) {
  const jobs = leaves(tree).flatMap(({ path, value }) => {
    if (typeof value !== 'string' || !REFERENCE.test(value)) return [];
    return [
      dereference(value, baseDir, env).then(
        (text) => {
          setAt(tree, path, coerceText(path, text) ?? text);
          report.resolved.add(formatPath(path));
        },
        (error: Error) => report.add(path, error.message),
      ),
    ];
  });
  await Promise.all(jobs);
}

/** Precedence, lowest first: generic TOLLGATE_<SECTION>_<KEY>, the specific variables, then CLI flags. */
async function applyOverrides(tree: Tree, input: LoadConfigInput, report: Report): Promise<void> {
  const generic = OVERRIDABLE_PATHS.map(
    (path) => [`TOLLGATE_${path.join('_')}`.toUpperCase(), path] as const,
  );
  // A name in both lists (TOLLGATE_DATABASE_URL) names the same key; it is applied once.
  for (const [name, path] of new Map<string, KeyPath>([
    ...STANDARD_VARIABLES,
    ...generic,
    ...SPECIFIC_VARIABLES,
  ])) {
    const raw = input.env[name];
    if (raw === undefined) continue;
    const section = path[0] as string;
    if (tree[section] !== undefined && !isTree(tree[section]) && path.length > 1) continue;
    report.setBy.set(formatPath(path), name);
    let text = raw;
    if (REFERENCE.test(raw)) {
      try {
        text = await dereference(raw, input.cwd, input.env);
        report.resolved.add(formatPath(path));
      } catch (error) {
        report.add(path, (error as Error).message);
        continue;
      }
    }
    const value = coerceText(path, text);
    if (value !== undefined) setAt(tree, path, value);
  }
  const { host, port } = input.overrides ?? {};
  for (const [flag, path, value] of [
    ['--host', ['server', 'host'], host] as const,
    ['--port', ['server', 'port'], port] as const,
  ]) {
    if (value === undefined) continue;
    report.setBy.set(formatPath(path), flag);
    setAt(tree, path, value);
  }
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  integer: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
};

// Secret values are described by their type only.
function describeValue(value: unknown, secret: boolean): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (secret) return `a ${typeof value}`;
  const shown =
    typeof value === 'string' ? JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value) : value;
  return `${typeof value} ${String(shown)}`;
}

function describeIssue(issue: ZodIssue, value: unknown, secret: boolean): string {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.received === 'undefined') return 'is required';
      return `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${describeValue(value, secret)}`;
    case 'invalid_enum_value':
      return `expected one of ${issue.options.join(', ')}, got ${describeValue(value, secret)}`;
    case 'too_small':
      if (issue.type !== 'number') return 'must not be empty';
      if (issue.minimum === 0 && issue.inclusive) return 'must not be negative';
      return `must be ${issue.inclusive ? 'at least' : 'greater than'} ${issue.minimum}`;
    case 'too_big':
      return `must be at most ${issue.maximum}`;
    case 'not_finite':
      return 'must be a finite number';
    default:
      return issue.message;
  }
}

function reportIssues(issues: readonly ZodIssue[], tree: Tree, report: Report): void {
  // Keys reported before the schema ran (inline secret, missing reference) are not reported again.
  const known = new Set(report.reported);
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) report.add([...issue.path, key], 'unknown key');
    } else if (!known.has(formatPath(issue.path))) {
      const value = issue.path.reduce<unknown>(
        (node, part) => (isTree(node) || Array.isArray(node) ? (node as Tree)[part] : undefined),
        tree,
      );
      report.add(issue.path, describeIssue(issue, value, report.isSecret(issue.path)));
    }
  }
}

function caFilePath(path: string | null, cwd: string): string | null {
  return path === null ? null : resolve(cwd, path);
}

function witnessPath(path: string | null, cwd: string): string | null {
  return path === null ? null : resolve(cwd, path);
}

/** "" is the default SQLite file in home; a relative sqlite: path resolves against the working directory. */
function databaseConfig(url: string, home: string, cwd: string): DatabaseConfig {
  if (url === '') return { kind: 'sqlite', path: join(home, 'tollgate.db') };
  if (!url.startsWith('sqlite:')) return { kind: 'postgres', url };
  const path = url.slice('sqlite:'.length).replace(/^\/\//, '');
  return { kind: 'sqlite', path: path === ':memory:' ? path : resolve(cwd, path) };
}

function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value as DeepReadonly<T>;
}
