// Write transactions that serialise writers on both dialects.
import { type Kysely, sql } from 'kysely';
import type { Db } from './connect.js';
import type { Database } from './schema.js';

export type Tx = Kysely<Database>;

/**
 * Runs fn in one write transaction. SQLite uses BEGIN IMMEDIATE so that a CLI process and a
 * running server never both read a head (audit chain, budget) and then both write after it;
 * PostgreSQL callers lock the rows they extend (SELECT … FOR UPDATE) inside fn.
 */
export async function writeTransaction<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  if (db.dialect === 'postgres') return db.kysely.transaction().execute(fn);
  return db.kysely.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    try {
      const result = await fn(conn);
      await sql`commit`.execute(conn);
      return result;
    } catch (error) {
      await sql`rollback`.execute(conn);
      throw error;
    }
  });
}
