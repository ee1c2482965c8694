// Homes for backup tests: a source installation with data, restore targets on SQLite or PostgreSQL
// that share (or do not share) its master key, and a full dump of a database to compare.
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { tableNames } from '../../src/backup/tables.js';
import { openDatabase } from '../../src/db/connect.js';
import { type CliResult, runCli } from '../helpers/cli.js';
import { createPgSchema, PG_URL } from '../helpers/pg.js';

export type Engine = 'sqlite' | 'postgres';

export const ENGINES: Engine[] = PG_URL ? ['sqlite', 'postgres'] : ['sqlite'];

export interface Home {
  readonly home: string;
  readonly env: Record<string, string>;
  run(argv: string[], stdin?: string): Promise<CliResult>;
  json<T>(argv: string[]): Promise<T>;
  cleanup(): Promise<void>;
}

/** A home directory on the given engine; with `masterKeyFrom`, that home's key file is copied in. */
export async function makeHome(
  engine: Engine,
  options: { masterKeyFrom?: string; freshKey?: boolean; upstream?: string } = {},
): Promise<Home> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-backup-'));
  const home = join(dir, 'home');
  await mkdir(home, { recursive: true, mode: 0o700 });
  const env: Record<string, string> = {
    TOLLGATE_HOME: home,
    TOLLGATE_TEST_CWD: dir,
    TOLLGATE_UPSTREAM_URL: options.upstream ?? 'http://127.0.0.1:9',
    TOLLGATE_LOGGING_LEVEL: 'silent',
  };
  if (options.masterKeyFrom)
    await copyFile(join(options.masterKeyFrom, 'master.key'), join(home, 'master.key'));
  if (options.freshKey)
    await writeFile(join(home, 'master.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  let drop = async () => {};
  if (engine === 'postgres') {
    if (!PG_URL) throw new Error('TOLLGATE_TEST_DATABASE_URL is not set');
    const schema = await createPgSchema(PG_URL);
    env.TOLLGATE_DATABASE_URL = schema.url;
    drop = () => schema.drop();
  }
  const run = (argv: string[], stdin = '') => runCli(argv, env, stdin);
  return {
    home,
    env,
    run,
    async json<T>(argv: string[]) {
      const result = await run([...argv, '--json']);
      if (result.code !== 0)
        throw new Error(`tollgate ${argv.join(' ')} exited ${result.code}: ${result.stderr}`);
      return JSON.parse(result.stdout) as T;
    },
    async cleanup() {
      await drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Every table of a home's database with all its rows, sorted: equal dumps mean equal databases. */
export async function dumpDatabase(home: Home): Promise<Record<string, string[]>> {
  const url = home.env.TOLLGATE_DATABASE_URL;
  const db = openDatabase(
    url ? { kind: 'postgres', url } : { kind: 'sqlite', path: join(home.home, 'tollgate.db') },
  );
  try {
    const out: Record<string, string[]> = {};
    for (const name of await tableNames(db.kysely, db.dialect)) {
      const rows = await sql<Record<string, unknown>>`select * from ${sql.table(name)}`.execute(db.kysely);
      out[name] = rows.rows
        .map((r) => JSON.stringify(r, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v)))
        .sort();
    }
    return out;
  } finally {
    await db.close();
  }
}

/** Rewrites a plain backup file's lines and recomputes its checksum (to build a valid-looking file). */
export async function rewriteBackup(
  from: string,
  to: string,
  edit: (header: Record<string, unknown>) => Record<string, unknown>,
): Promise<void> {
  const lines = (await readFile(from, 'utf8')).split('\n').filter((l) => l !== '');
  const trailer = JSON.parse(lines.pop() ?? '{}') as Record<string, unknown>;
  const header = edit(JSON.parse(lines[0] ?? '{}') as Record<string, unknown>);
  const body = [JSON.stringify(header), ...lines.slice(1)].map((l) => `${l}\n`).join('');
  const sha256 = createHash('sha256').update(body, 'utf8').digest('hex');
  await writeFile(to, `${body}${JSON.stringify({ ...trailer, sha256 })}\n`, { mode: 0o600 });
}

/**
 * A copy of a backup without one table (its `{"table": …}` line, its rows, its header and trailer
 * entries) and without the migration that created it: a valid backup of the schema before it, when
 * that migration only added the table.
 */
export async function withoutTable(
  from: string,
  to: string,
  table: string,
  migration: string,
): Promise<void> {
  const lines = (await readFile(from, 'utf8')).split('\n').filter((l) => l !== '');
  const trailer = JSON.parse(lines.pop() ?? '{}') as { rows?: Record<string, number> };
  const header = JSON.parse(lines[0] ?? '{}') as { tables?: { name: string }[]; migrations?: string[] };
  const kept: string[] = [];
  let skipping = false;
  for (const line of lines.slice(1)) {
    if (line.startsWith('{"table"')) skipping = (JSON.parse(line) as { table: string }).table === table;
    if (!skipping) kept.push(line);
  }
  const edited = {
    ...header,
    tables: (header.tables ?? []).filter((t) => t.name !== table),
    // The schema before `migration`: it and every later migration are not applied yet.
    migrations: (header.migrations ?? []).filter((m) => m < migration),
  };
  const rows = { ...trailer.rows };
  delete rows[table];
  const body = [JSON.stringify(edited), ...kept].map((l) => `${l}\n`).join('');
  const sha256 = createHash('sha256').update(body, 'utf8').digest('hex');
  await writeFile(to, `${body}${JSON.stringify({ ...trailer, rows, sha256 })}\n`, { mode: 0o600 });
}
