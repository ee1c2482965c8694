// Installation-wide values (org id, master-key check, sealed pepper, admin token hash).
import { sql } from 'kysely';
import type { Db } from '../db/connect.js';
import type { Tx } from '../db/tx.js';

/** Reads one meta value; null when the key or the whole table (fresh database) is absent. */
export async function readMeta(db: Db, key: string): Promise<string | null> {
  if (!(await metaTableExists(db))) return null;
  const row = await db.kysely.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst();
  return row?.value ?? null;
}

export async function writeMeta(tx: Tx, key: string, value: string): Promise<void> {
  await tx
    .insertInto('meta')
    .values({ key, value })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
    .execute();
}

/** Databases whose meta table has been seen: migrations only add tables, so it stays. */
const seen = new WeakSet<Db>();

/**
 * Whether the meta table exists: Tollgate's tables are in this database (migrations ran). Asked of the
 * catalog until the answer is yes (a catalog query on every admin request cost PostgreSQL ~2 ms).
 */
export async function metaTableExists(db: Db): Promise<boolean> {
  if (seen.has(db)) return true;
  const query =
    db.dialect === 'sqlite'
      ? sql<{ n: number }>`select count(*) as n from sqlite_master where type = 'table' and name = 'meta'`
      : sql<{
          n: number;
        }>`select count(*)::int as n from information_schema.tables where table_schema = current_schema() and table_name = 'meta'`;
  const result = await query.execute(db.kysely);
  const exists = Number(result.rows[0]?.n ?? 0) > 0;
  if (exists) seen.add(db);
  return exists;
}
