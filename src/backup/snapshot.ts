// `tollgate backup`: one consistent snapshot of every data table, taken while a server may be writing.
// SQLite: one read transaction (WAL: writers go on, the reader keeps its snapshot). PostgreSQL: one
// REPEATABLE READ, READ ONLY transaction; rows come through a cursor, so neither engine's tables
// are ever held in memory whole.
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../db/connect.js';
import type { Tx } from '../db/tx.js';
import type { BackupSink } from './backup-file.js';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  type BackupHeader,
  encodeValue,
  headerLine,
  type TableShape,
  trailerLine,
} from './format.js';
import { appliedMigrations, dataTables } from './tables.js';

/** Rows per cursor fetch (PostgreSQL). */
const FETCH_ROWS = 1000;

export interface BackupSummary {
  readonly header: BackupHeader;
  readonly rows: Readonly<Record<string, number>>;
}

interface Snapshot {
  readonly tx: Tx;
  rows(table: TableShape): AsyncIterable<unknown[]>;
}

/** Writes the whole database to sink (the caller commits or discards the sink). */
export async function writeBackup(
  db: Db,
  options: { fingerprint: string; now: number; sink: BackupSink },
): Promise<BackupSummary> {
  return withSnapshot(db, async ({ tx, rows }) => {
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      engine: db.dialect,
      created_at: new Date(options.now).toISOString(),
      migrations: await appliedMigrations(tx, db.dialect),
      master_key_fingerprint: options.fingerprint,
      tables: await dataTables(tx, db.dialect),
    };
    const hash = createHash('sha256');
    const emit = async (line: string) => {
      hash.update(line, 'utf8');
      await options.sink.write(line);
    };
    await emit(headerLine(header));
    const counts: Record<string, number> = {};
    for (const table of header.tables) {
      await emit(`${JSON.stringify({ table: table.name })}\n`);
      let count = 0;
      for await (const row of rows(table)) {
        const values = row.map((v, i) => encodeValue(v, `${table.name}.${table.columns[i] ?? i}`));
        await emit(`${JSON.stringify(values)}\n`);
        count++;
      }
      counts[table.name] = count;
    }
    await options.sink.write(trailerLine({ end: BACKUP_FORMAT, rows: counts, sha256: hash.digest('hex') }));
    return { header, rows: counts };
  });
}

async function withSnapshot<T>(db: Db, fn: (snapshot: Snapshot) => Promise<T>): Promise<T> {
  const handle = db.sqlite;
  if (handle !== null) {
    return db.kysely.connection().execute(async (tx) => {
      // Deferred: the snapshot is fixed by the first read and kept until commit; writers are not blocked.
      await sql`begin`.execute(tx);
      try {
        const result = await fn({
          tx,
          async *rows(table) {
            const columns = table.columns.map(quoteIdent).join(', ');
            const statement = handle.prepare(`select ${columns} from ${quoteIdent(table.name)}`).raw(true);
            for (const row of statement.iterate()) yield row as unknown[];
          },
        });
        await sql`commit`.execute(tx);
        return result;
      } catch (error) {
        await sql`rollback`.execute(tx);
        throw error;
      }
    });
  }
  return db.kysely
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute((tx) =>
      fn({
        tx,
        async *rows(table) {
          const columns = sql.join(table.columns.map((c) => sql.ref(c)));
          await sql`declare tollgate_backup no scroll cursor for
              select ${columns} from ${sql.table(table.name)}`.execute(tx);
          for (;;) {
            const batch = await sql<Record<string, unknown>>`fetch forward ${sql.lit(FETCH_ROWS)}
                from tollgate_backup`.execute(tx);
            for (const row of batch.rows) yield table.columns.map((c) => row[c]);
            if (batch.rows.length < FETCH_ROWS) break;
          }
          await sql`close tollgate_backup`.execute(tx);
        },
      }),
    );
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
