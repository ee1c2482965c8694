// Forward-only migrations, compiled into the program and applied at start.
import { type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import { AppError } from '../lib/errors.js';
import { VERSION } from '../version.js';
import type { Db, Dialect } from './connect.js';
import { initialMigration } from './migrations/0001-initial.js';
import { usageMigration } from './migrations/0002-usage.js';
import { enrollmentMigration } from './migrations/0003-enrollment.js';
import { credentialRetireMigration } from './migrations/0004-credential-retire.js';
import { leanUsageIndexesMigration } from './migrations/0005-lean-usage-indexes.js';
import { dailySpendMigration } from './migrations/0006-daily-spend.js';
import { clusteredLedgerMigration } from './migrations/0007-clustered-ledger.js';
import { keyLineageMigration } from './migrations/0008-key-lineage.js';
import { serveLeaseMigration } from './migrations/0009-serve-lease.js';
import { adminSurfaceMigration } from './migrations/0010-admin-surface.js';
import { signInMigration } from './migrations/0011-sign-in.js';
import { usageRollupsMigration } from './migrations/0012-usage-rollups.js';
import { dailyUsageMigration } from './migrations/0013-daily-usage.js';
import { dailyUsageOrderMigration } from './migrations/0014-daily-usage-order.js';
import { alertsMigration } from './migrations/0015-alerts.js';
import { anthropicReportsMigration } from './migrations/0016-anthropic-reports.js';
import { anthropicMappingMigration } from './migrations/0017-anthropic-mapping.js';
import { anthropicSnapshotsMigration } from './migrations/0018-anthropic-snapshots.js';
import { serveInstancesMigration } from './migrations/0019-serve-instances.js';
import { personKeysMigration } from './migrations/0022-person-keys.js';
import { instanceMasterKeyMigration } from './migrations/0023-instance-master-key.js';

export function migrationsFor(dialect: Dialect): Record<string, Migration> {
  return {
    '0001-initial': initialMigration(dialect),
    '0002-usage': usageMigration(dialect),
    '0003-enrollment': enrollmentMigration(dialect),
    '0004-credential-retire': credentialRetireMigration(dialect),
    '0005-lean-usage-indexes': leanUsageIndexesMigration(dialect),
    '0006-daily-spend': dailySpendMigration(dialect),
    '0007-clustered-ledger': clusteredLedgerMigration(dialect),
    '0008-key-lineage': keyLineageMigration(dialect),
    '0009-serve-lease': serveLeaseMigration(dialect),
    '0010-admin-surface': adminSurfaceMigration(dialect),
    '0011-sign-in': signInMigration(dialect),
    '0012-usage-rollups': usageRollupsMigration(dialect),
    '0013-daily-usage': dailyUsageMigration(dialect),
    '0014-daily-usage-order': dailyUsageOrderMigration(dialect),
    '0015-alerts': alertsMigration(dialect),
    '0016-anthropic-reports': anthropicReportsMigration(dialect),
    '0017-anthropic-mapping': anthropicMappingMigration(dialect),
    '0018-anthropic-snapshots': anthropicSnapshotsMigration(dialect),
    '0019-serve-instances': serveInstancesMigration(dialect),
    '0022-person-keys': personKeysMigration(dialect),
    '0023-instance-master-key': instanceMasterKeyMigration(),
  };
}

class InCodeProvider implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrationsFor(this.dialect);
  }
}

export const MIGRATION_TABLE = 'tollgate_migrations';
export const MIGRATION_LOCK_TABLE = 'tollgate_migrations_lock';

/**
 * Creates the migrator's own tables in the schema this connection writes to (PostgreSQL). Kysely's
 * migrator, given no schema, takes a table of that name in ANY schema of the database as its own, skips
 * creating it, then fails to find it on the search path ("relation tollgate_migrations_lock does not
 * exist") — so a second installation in another schema of the same database, or a schema left behind
 * by a crashed test run, would stop every migration. The definitions are the migrator's own.
 */
export async function ensureMigrationTables(db: Db): Promise<void> {
  if (db.dialect !== 'postgres') return;
  const tables = [
    [MIGRATION_TABLE, sql`(name varchar(255) not null primary key, timestamp varchar(255) not null)`],
    [MIGRATION_LOCK_TABLE, sql`(id varchar(255) not null primary key, is_locked integer not null default 0)`],
  ] as const;
  for (const [name, columns] of tables) {
    try {
      await sql`create table if not exists ${sql.table(name)} ${columns}`.execute(db.kysely);
    } catch (error) {
      // Two processes creating it at once: `if not exists` can still throw on PostgreSQL.
      const found = await sql<{ found: string | null }>`select to_regclass(${name})::text as found`.execute(
        db.kysely,
      );
      if (found.rows[0]?.found == null) throw error;
    }
  }
}

/**
 * Forward only: a database that already went through a migration newer than the newest this program
 * knows was written by a newer Tollgate, and this one refuses it before anything is written (it would
 * not understand the schema; downgrading a database is not supported). Read-only.
 */
export async function assertNotNewer(
  db: Db,
  known: readonly string[] = Object.keys(migrationsFor(db.dialect)),
): Promise<void> {
  const exists =
    db.dialect === 'sqlite'
      ? sql<{
          n: number;
        }>`select count(*) as n from sqlite_master where type = 'table' and name = ${MIGRATION_TABLE}`
      : sql<{
          n: number;
        }>`select count(*)::int as n from information_schema.tables where table_schema = current_schema() and table_name = ${MIGRATION_TABLE}`;
  if (Number((await exists.execute(db.kysely)).rows[0]?.n ?? 0) === 0) return;
  const applied = await sql<{ name: string }>`select name from ${sql.table(MIGRATION_TABLE)}`.execute(
    db.kysely,
  );
  const newestKnown = [...known].sort().at(-1) ?? '';
  const newestApplied =
    applied.rows
      .map((r) => r.name)
      .sort()
      .at(-1) ?? '';
  if (newestApplied <= newestKnown) return;
  throw new AppError(
    'invalid_config',
    `the database is at schema migration ${newestApplied}, newer than this Tollgate binary knows (its newest is ${newestKnown}): it was written by a newer Tollgate. Upgrade the binary (this one is ${VERSION}) to the release that wrote it or later; migrations are forward-only. Nothing was changed`,
    { database_migration: newestApplied, binary_migration: newestKnown },
  );
}

/** Applies every pending migration; refuses a database that is newer than this program. */
export async function migrateToLatest(db: Db): Promise<void> {
  await assertNotNewer(db);
  await ensureMigrationTables(db);
  const migrator = new Migrator({
    db: db.kysely,
    provider: new InCodeProvider(db.dialect),
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    const text = error instanceof Error ? error.message : String(error);
    if (text.includes('corrupted migrations')) {
      throw new AppError(
        'invalid_config',
        'the database was written by a newer Tollgate; upgrade before using it',
      );
    }
    throw new AppError(
      'internal',
      `database migration ${failed ?? ''} failed: ${text}`,
      {},
      { cause: error },
    );
  }
}
