// `tollgate restore FILE`: loads a backup into the configured database, which must hold no data.
// Every refusal (damaged file, wrong passphrase, another master key, a newer schema, a non-empty
// target) comes before the first write: the file is read and verified whole first. The rows are then
// written in one transaction that re-reads and re-verifies the file, so a file changed in between
// rolls back as well.
import { type Kysely, Migrator, sql } from 'kysely';
import type { MasterKey } from '../crypto/master-key.js';
import type { Db } from '../db/connect.js';
import {
  ensureMigrationTables,
  MIGRATION_LOCK_TABLE,
  MIGRATION_TABLE,
  migrateToLatest,
  migrationsFor,
} from '../db/migrate.js';
import type { Database } from '../db/schema.js';
import { writeTransaction } from '../db/tx.js';
import { AppError } from '../lib/errors.js';
import { type BackupSource, backupLines } from './backup-source.js';
import { type BackupHeader, checkSchema, type DbValue, type TableShape } from './format.js';
import { scanBackup } from './scan.js';
import { appliedMigrations, dataTables, RUNTIME_TABLES, resetSequences, tableNames } from './tables.js';

/** Bound parameters per INSERT statement (below SQLite's and PostgreSQL's limits). */
const PARAMS_PER_INSERT = 4000;

export interface RestoreSummary {
  readonly header: BackupHeader;
  readonly rows: Readonly<Record<string, number>>;
}

export async function restoreBackup(
  db: Db,
  master: MasterKey,
  source: BackupSource,
): Promise<RestoreSummary> {
  const { header } = await scanBackup(backupLines(source));
  checkSchema(header, Object.keys(migrationsFor(db.dialect)));
  if (header.master_key_fingerprint !== master.fingerprint) {
    throw new AppError(
      'master_key_invalid',
      `the backup was taken under another master key (fingerprint ${header.master_key_fingerprint}; the loaded key is ${master.fingerprint}): a restore needs the master key that was current when the backup was taken; nothing was restored`,
    );
  }
  const applied = await appliedMigrations(db.kysely, db.dialect);
  await checkTarget(db, header, applied);
  if (applied.length === 0) await migrateTo(db, header.migrations);
  await checkColumns(db, header);
  const rows = await writeTransaction(db, async (tx) => {
    // SQLite's BEGIN IMMEDIATE already keeps every other writer out; on PostgreSQL an `init` running
    // meanwhile waits for this lock and then finds the restored installation.
    if (db.dialect === 'postgres') await sql`lock table meta in exclusive mode`.execute(tx);
    await assertEmpty(tx, db);
    const inserter = batchInserter(tx);
    const { trailer } = await scanBackup(backupLines(source), {
      row: inserter.add,
      tableEnd: inserter.flush,
    });
    await resetSequences(tx, db.dialect);
    return trailer.rows;
  });
  // A backup of an older schema was loaded at its own version; bring it up to this program's.
  await migrateToLatest(db);
  return { header, rows };
}

/** The target is brand new (no tables at all) or migrated to the backup's schema and without data. */
async function checkTarget(db: Db, header: BackupHeader, applied: readonly string[]): Promise<void> {
  if (applied.length === 0) {
    const tables = await tableNames(db.kysely, db.dialect);
    const foreign = tables.filter((t) => t !== MIGRATION_TABLE && t !== MIGRATION_LOCK_TABLE);
    if (foreign.length > 0)
      throw new AppError(
        'conflict',
        `the target database holds tables (${foreign.slice(0, 3).join(', ')}) but no Tollgate schema: restore into an empty database; nothing was restored`,
      );
    return;
  }
  await assertEmpty(db.kysely, db);
  if (applied.join() !== header.migrations.join())
    throw new AppError(
      'conflict',
      `the target database is at schema ${applied.at(-1) ?? ''} and the backup at ${header.migrations.at(-1) ?? ''}: restore it into a brand-new database (an empty SQLite file or PostgreSQL schema); nothing was restored`,
    );
}

/** Refuses a database that holds any data (the serve lease must be free: no server on it). */
async function assertEmpty(conn: Kysely<Database>, db: Db): Promise<void> {
  const filled: string[] = [];
  for (const { name } of await dataTables(conn, db.dialect)) {
    const found = await sql<{ one: number }>`select 1 as one from ${sql.table(name)} limit 1`.execute(conn);
    if (found.rows.length > 0) filled.push(name);
  }
  for (const name of RUNTIME_TABLES) {
    if (!(await tableNames(conn, db.dialect)).includes(name)) continue;
    const busy =
      name === 'serve_lease'
        ? sql`select 1 as one from serve_lease where holder is not null limit 1`
        : sql`select 1 as one from ${sql.table(name)} limit 1`;
    if ((await busy.execute(conn)).rows.length > 0) filled.push(name);
  }
  if (filled.length > 0)
    throw new AppError(
      'conflict',
      `the target database is not empty (rows in ${filled.slice(0, 4).join(', ')}${filled.length > 4 ? ', …' : ''}): a restore needs an empty database and never merges; nothing was restored`,
    );
}

/** A brand-new database gets the backup's own schema version, so its rows fit as they are. */
async function migrateTo(db: Db, migrations: readonly string[]): Promise<void> {
  const last = migrations.at(-1);
  if (last === undefined) throw new AppError('invalid_input', 'the backup names no database schema');
  await ensureMigrationTables(db);
  const migrator = new Migrator({
    db: db.kysely,
    provider: { getMigrations: async () => migrationsFor(db.dialect) },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
  const { error } = await migrator.migrateTo(last);
  if (error)
    throw new AppError(
      'internal',
      `preparing the target database failed: ${String(error)}`,
      {},
      { cause: error },
    );
}

async function checkColumns(db: Db, header: BackupHeader): Promise<void> {
  const target = new Map((await dataTables(db.kysely, db.dialect)).map((t) => [t.name, t.columns]));
  for (const table of header.tables) {
    const columns = target.get(table.name);
    const same =
      columns !== undefined &&
      columns.length === table.columns.length &&
      table.columns.every((c) => columns.includes(c));
    if (!same)
      throw new AppError('internal', `table ${table.name} of the backup does not match the target database`);
  }
}

function batchInserter(tx: Kysely<Database>) {
  let rows: DbValue[][] = [];
  let params = 0;
  const flush = async (table: TableShape) => {
    if (rows.length === 0) return;
    const columns = sql.join(table.columns.map((c) => sql.ref(c)));
    const values = sql.join(rows.map((r) => sql`(${sql.join(r)})`));
    rows = [];
    params = 0;
    await sql`insert into ${sql.table(table.name)} (${columns}) values ${values}`.execute(tx);
  };
  return {
    flush,
    add: async (table: TableShape, values: DbValue[]) => {
      rows.push(values);
      params += values.length;
      if (params >= PARAMS_PER_INSERT) await flush(table);
    },
  };
}
