// The databases of the dashboard scenario: a throw-away PostgreSQL schema (like test/helpers/pg.ts;
// TOLLGATE_DATABASE_URL with `options=-c search_path=…` selects it), and the size and rollup row count
// of a seeded database, read after the seeder has closed it.
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { isRecord } from './util.js';

/**
 * The tests' server (TOLLGATE_TEST_DATABASE_URL, see .ci/services.sh) or postgres://127.0.0.1:5432/test;
 * without a user name in the URL, PGUSER or `postgres` (node-postgres has no default when USER is unset).
 */
export function dashboardPgUrl(env: NodeJS.ProcessEnv = process.env): string {
  const url = new URL(env.TOLLGATE_TEST_DATABASE_URL || 'postgres://127.0.0.1:5432/test');
  if (url.username === '') url.username = env.PGUSER || 'postgres';
  return url.toString();
}

export interface PgSchema {
  readonly name: string;
  /** A connection URL whose search_path is the schema. */
  readonly url: string;
  drop(): Promise<void>;
}

async function withClient<T>(url: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** Null when the server answers, else why not. */
export async function pgUnreachable(base: string): Promise<string | null> {
  try {
    await withClient(base, (c) => c.query('select 1'));
    return null;
  } catch (error) {
    return `PostgreSQL at ${base} does not answer (${error instanceof Error ? error.message : String(error)})`;
  }
}

export async function createPgSchema(base: string): Promise<PgSchema> {
  const name = `bench_${randomBytes(6).toString('hex')}`;
  await withClient(base, (c) => c.query(`create schema ${name}`));
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${name}`);
  return {
    name,
    url: url.toString(),
    drop: () =>
      withClient(base, (c) => c.query(`drop schema if exists ${name} cascade`)).then(() => undefined),
  };
}

export interface DbStats {
  readonly sizeMb: number;
  readonly rollupRows: number;
}

function count(row: unknown): number {
  return isRecord(row) ? Number(row.n) : Number.NaN;
}

export function sqliteStats(dbFile: string): DbStats {
  let bytes = statSync(dbFile).size;
  try {
    bytes += statSync(`${dbFile}-wal`).size;
  } catch {
    // No WAL left over.
  }
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return {
      sizeMb: bytes / 2 ** 20,
      rollupRows: count(db.prepare('select count(*) as n from usage_rollups').get()),
    };
  } finally {
    db.close();
  }
}

export async function pgStats(schema: PgSchema): Promise<DbStats> {
  return withClient(schema.url, async (c) => {
    const size = await c.query(
      'select coalesce(sum(pg_total_relation_size(c.oid)), 0) as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind = $2',
      [schema.name, 'r'],
    );
    const rollups = await c.query('select count(*) as n from usage_rollups');
    return { sizeMb: count(size.rows[0]) / 2 ** 20, rollupRows: count(rollups.rows[0]) };
  });
}

/**
 * ANALYZE of the schema's tables, as autovacuum does on a live server a minute or so after that many
 * writes (this machine's PostgreSQL runs with autovacuum off, which would leave the planner guessing a
 * few hundred rows where there are tens of thousands). Returns the server's autovacuum setting.
 */
export async function pgAnalyze(schema: PgSchema): Promise<string> {
  return withClient(schema.url, async (c) => {
    const setting = await c.query('show autovacuum');
    const tables = await c.query('select tablename from pg_tables where schemaname = $1', [schema.name]);
    const names = tables.rows.map((r: unknown) => (isRecord(r) ? String(r.tablename) : '')).filter(Boolean);
    if (names.length > 0) await c.query(`analyze ${names.map((n) => `"${n}"`).join(', ')}`);
    const row: unknown = setting.rows[0];
    return isRecord(row) ? String(row.autovacuum) : 'unknown';
  });
}
