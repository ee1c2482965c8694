// Forward-only migrations, compiled into the program and applied at start.
import { type Migration, type MigrationProvider, Migrator } from 'kysely';
import { AppError } from '../lib/errors.js';
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
  };
}

class InCodeProvider implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrationsFor(this.dialect);
  }
}

/** Applies every pending migration; refuses a database that is newer than this program. */
export async function migrateToLatest(db: Db): Promise<void> {
  const migrator = new Migrator({
    db: db.kysely,
    provider: new InCodeProvider(db.dialect),
    migrationTableName: 'tollgate_migrations',
    migrationLockTableName: 'tollgate_migrations_lock',
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
