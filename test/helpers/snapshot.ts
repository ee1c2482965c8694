// A digest of every row of every table, to prove a refused command changed nothing.
import { createHash } from 'node:crypto';
import SQLite from 'better-sqlite3';

export function databaseDigest(path: string): string {
  const db = new SQLite(path, { readonly: true, fileMustExist: true });
  try {
    const tables = db
      .prepare(`select name, sql from sqlite_master where type = 'table' order by name`)
      .all() as Array<{ name: string; sql: string | null }>;
    const hash = createHash('sha256');
    for (const { name, sql } of tables) {
      hash.update(name);
      // A WITHOUT ROWID table has no rowid; it is stored, and scanned, in primary-key order.
      const clustered = /without\s+rowid\s*$/i.test(sql ?? '');
      const order = clustered ? '' : ' order by rowid';
      for (const row of db.prepare(`select * from "${name}"${order}`).iterate()) {
        hash.update(JSON.stringify(row, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v)));
      }
    }
    return hash.digest('hex');
  } finally {
    db.close();
  }
}
