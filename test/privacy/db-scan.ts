// Scans every text column of every table of a Tollgate database (SQLite or PostgreSQL) for a string:
// where a person's data still is. Used by the purge tests, with a positive control before the purge.
import { sql } from 'kysely';
import { expect } from 'vitest';
import type { Db } from '../../src/db/connect.js';

/** `table.column` of every column holding `needle` (case-insensitive) in at least one row. */
export async function columnsHolding(db: Db, needle: string): Promise<string[]> {
  const pattern = `%${needle.toLowerCase()}%`;
  const columns: Array<{ table: string; column: string }> = [];
  if (db.dialect === 'sqlite') {
    const tables = await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(
      db.kysely,
    );
    for (const { name } of tables.rows) {
      const info = await sql<{ name: string }>`select name from pragma_table_info(${name})`.execute(
        db.kysely,
      );
      for (const c of info.rows) columns.push({ table: name, column: c.name });
    }
  } else {
    const info = await sql<{ table_name: string; column_name: string }>`
      select table_name, column_name from information_schema.columns
      where table_schema = current_schema() and data_type in ('text', 'character varying', 'json', 'jsonb')`.execute(
      db.kysely,
    );
    for (const c of info.rows) columns.push({ table: c.table_name, column: c.column_name });
  }
  expect(columns.length).toBeGreaterThan(20);
  const hits: string[] = [];
  for (const { table, column } of columns) {
    const found = await sql<{ n: number | string }>`
      select count(*) as n from ${sql.table(table)} where lower(cast(${sql.ref(column)} as text)) like ${pattern}`.execute(
      db.kysely,
    );
    if (Number(found.rows[0]?.n ?? 0) > 0) hits.push(`${table}.${column}`);
  }
  return hits;
}
