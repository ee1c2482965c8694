// Opens the database named by the configuration: SQLite (WAL) by default, PostgreSQL for shared deployments.
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { AppError } from '../lib/errors.js';
import type { Database } from './schema.js';
import { reusingStatements } from './sqlite-statements.js';

export type DatabaseTarget = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };
export type Dialect = DatabaseTarget['kind'];

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly dialect: Dialect;
  /** The SQLite file (null for PostgreSQL or in-memory databases). */
  readonly file: string | null;
  /**
   * The raw better-sqlite3 handle (SQLite only), for the one hot path that writes synchronously
   * with prepared statements (the usage ledger). Everything else goes through Kysely.
   */
  readonly sqlite: SQLite.Database | null;
  /**
   * PostgreSQL only: runs one statement as a named prepared statement, parsed and planned once per
   * connection instead of on every call (the usage ledger's one constant statement).
   */
  readonly prepared: ((name: string, text: string, values: readonly unknown[]) => Promise<void>) | null;
  close(): Promise<void>;
}

/** SQLite's page cache per connection (KiB). */
const PAGE_CACHE_KIB = 2048;

const require = createRequire(import.meta.url);
let pgModule: typeof import('pg') | null = null;

/** The pg driver, loaded on first use so SQLite installations never pay for it (~15 MB RSS). */
function loadPg(): typeof import('pg') {
  if (pgModule) return pgModule;
  const pg = require('pg') as typeof import('pg');
  // PostgreSQL returns int8 as text; every bigint column holds a safe integer (ms, micro-USD, counters).
  pg.types.setTypeParser(20, (text: string) => {
    const value = Number(text);
    if (!Number.isSafeInteger(value))
      throw new AppError('internal', 'bigint column outside the safe integer range');
    return value;
  });
  pgModule = pg;
  return pg;
}

/** Opens (and for SQLite creates) the database; no migrations are run here. */
export function openDatabase(target: DatabaseTarget): Db {
  return target.kind === 'sqlite' ? openSqlite(target.path) : openPostgres(target.url);
}

function openSqlite(path: string): Db {
  const inMemory = path === ':memory:';
  if (!inMemory) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let handle: SQLite.Database;
  try {
    handle = new SQLite(path, { timeout: 5000 });
  } catch (cause) {
    throw new AppError('invalid_config', `cannot open SQLite database ${path}`, {}, { cause });
  }
  // WAL lets the CLI and a running server share the file; a committed transaction survives kill -9
  // of the process with synchronous=NORMAL (only an OS crash can lose the newest commits).
  handle.pragma('journal_mode = WAL');
  handle.pragma('synchronous = NORMAL');
  handle.pragma('foreign_keys = ON');
  // better-sqlite3 builds SQLite with a 16 MB page cache per connection; the hot path only appends at
  // the right edge of the ledger's B-trees, and anything else is read from the OS page cache, so
  // SQLite's own default (2 MiB) is enough — it is the largest allocation outside the JS heap.
  handle.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
  const kysely = new Kysely<Database>({
    dialect: new SqliteDialect({ database: reusingStatements(handle) }),
  });
  return {
    kysely,
    dialect: 'sqlite',
    file: inMemory ? null : path,
    sqlite: handle,
    prepared: null,
    close: () => kysely.destroy(),
  };
}

/**
 * Tollgate's statements are small by design (the ledger's rows, budgets, and report reads bounded by
 * the rollups: tens of thousands of rows). PostgreSQL's default of two parallel workers per query
 * starts processes for those reports that cost more than they save: a 30-day by-day read took 55–100
 * ms with them and 18–22 ms without on a 2-core server. So each connection of the pool starts without
 * them, unless the URL's own `options` name the setting (which then wins).
 */
export const PG_SESSION_SETUP = 'set max_parallel_workers_per_gather = 0';

function openPostgres(url: string): Db {
  const pool = new (loadPg().Pool)({ connectionString: url, max: 10, connectionTimeoutMillis: 5000 });
  // An idle client that errors (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  if (!url.includes('max_parallel_workers_per_gather'))
    // Queued on the client ahead of anything the pool hands it out for; were it refused, the server's
    // default would simply stay.
    pool.on('connect', (client) => {
      client.query(PG_SESSION_SETUP).catch(() => {});
    });
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const prepared = async (name: string, text: string, values: readonly unknown[]): Promise<void> => {
    await pool.query({ name, text, values: [...values] });
  };
  return { kysely, dialect: 'postgres', file: null, sqlite: null, prepared, close: () => kysely.destroy() };
}

/**
 * PostgreSQL: opens `count` of the pool's connections now (each set up as above), so the first
 * requests — the dashboard's overview sends six reads at once — do not pay for new server processes.
 * SQLite has one connection, already open.
 */
export async function openConnections(db: Db, count: number): Promise<void> {
  if (db.dialect !== 'postgres') return;
  await Promise.all(Array.from({ length: count }, () => sql`select 1`.execute(db.kysely)));
}
