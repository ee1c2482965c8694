// What a backup reads and a restore writes: the database's own tables, their columns and the order
// their foreign keys impose, read from the engine's catalogue (so a future migration's table is
// carried without a list to update here).
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../db/connect.js';
import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE } from '../db/migrate.js';
import type { Database } from '../db/schema.js';
import type { TableShape } from './format.js';

type Conn = Kysely<Database>;

/**
 * Runtime state of the serving processes, not data: the serve lease and the instance registry. A
 * restored copy starts with the lease free and no instances (the lease's one row comes from its
 * migration).
 */
export const RUNTIME_TABLES: ReadonlySet<string> = new Set(['serve_lease', 'serve_instances']);

/** Every data table with its columns, a table after the tables it references. */
export async function dataTables(conn: Conn, dialect: Dialect): Promise<TableShape[]> {
  const names = (await tableNames(conn, dialect)).filter(
    (n) => n !== MIGRATION_TABLE && n !== MIGRATION_LOCK_TABLE && !RUNTIME_TABLES.has(n),
  );
  const parents = await foreignKeys(conn, dialect);
  const shapes: TableShape[] = [];
  for (const name of parentsFirst(names, parents)) {
    shapes.push({ name, columns: await columnsOf(conn, dialect, name) });
  }
  return shapes;
}

/** Every table of the database (PostgreSQL: of the connection's current schema). */
export async function tableNames(conn: Conn, dialect: Dialect): Promise<string[]> {
  const rows =
    dialect === 'sqlite'
      ? await sql<{ name: string }>`select name from sqlite_master
          where type = 'table' and name not like 'sqlite_%' order by name`.execute(conn)
      : await sql<{ name: string }>`select table_name as name from information_schema.tables
          where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name`.execute(
          conn,
        );
  return rows.rows.map((r) => r.name);
}

/** The applied migrations, in order; none for a database never migrated. */
export async function appliedMigrations(conn: Conn, dialect: Dialect): Promise<string[]> {
  if (!(await tableNames(conn, dialect)).includes(MIGRATION_TABLE)) return [];
  const rows = await sql<{
    name: string;
  }>`select name from ${sql.table(MIGRATION_TABLE)} order by name`.execute(conn);
  return rows.rows.map((r) => r.name);
}

async function columnsOf(conn: Conn, dialect: Dialect, table: string): Promise<string[]> {
  const rows =
    dialect === 'sqlite'
      ? await sql<{ name: string }>`select name from pragma_table_info(${table}) order by cid`.execute(conn)
      : await sql<{ name: string }>`select column_name as name from information_schema.columns
          where table_schema = current_schema() and table_name = ${table} order by ordinal_position`.execute(
          conn,
        );
  return rows.rows.map((r) => r.name);
}

/** child → the tables it references. */
async function foreignKeys(conn: Conn, dialect: Dialect): Promise<Map<string, string[]>> {
  const rows =
    dialect === 'sqlite'
      ? await sql<{ child: string; parent: string }>`select m.name as child, f."table" as parent
          from sqlite_master m, pragma_foreign_key_list(m.name) f where m.type = 'table'`.execute(conn)
      : await sql<{ child: string; parent: string }>`select cl.relname as child, pa.relname as parent
          from pg_constraint c
          join pg_class cl on cl.oid = c.conrelid
          join pg_class pa on pa.oid = c.confrelid
          join pg_namespace n on n.oid = cl.relnamespace
          where c.contype = 'f' and n.nspname = current_schema()`.execute(conn);
  const map = new Map<string, string[]>();
  for (const { child, parent } of rows.rows) map.set(child, [...(map.get(child) ?? []), parent]);
  return map;
}

/** Names sorted so that each follows the tables it references (self-references ignored). */
export function parentsFirst(names: readonly string[], parents: ReadonlyMap<string, string[]>): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, path: Set<string>) => {
    if (seen.has(name) || path.has(name) || !names.includes(name)) return;
    path.add(name);
    for (const parent of parents.get(name) ?? []) if (parent !== name) visit(parent, path);
    path.delete(name);
    seen.add(name);
    out.push(name);
  };
  for (const name of names) visit(name, new Set());
  return out;
}

/** PostgreSQL: moves every sequence-backed column's sequence past the highest restored value. */
export async function resetSequences(conn: Conn, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return; // SQLite's AUTOINCREMENT follows explicit ids by itself
  const serial = await sql<{ table: string; column: string }>`select table_name as "table",
      column_name as "column" from information_schema.columns
      where table_schema = current_schema() and (column_default like 'nextval(%' or is_identity = 'YES')`.execute(
    conn,
  );
  for (const { table, column } of serial.rows) {
    await sql`select setval(pg_get_serial_sequence(${quoteIdent(table)}, ${column}),
        coalesce((select max(${sql.ref(column)}) from ${sql.table(table)}), 0) + 1, false)`.execute(conn);
  }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
