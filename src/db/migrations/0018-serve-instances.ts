// Every serving process registers as an instance (heartbeated): several may serve one PostgreSQL
// database when they share budgets and rate limits through Redis; `tollgate doctor` reads the rows
// (each heartbeat by the database's clock and by the instance's own) to check clock skew.
import type { Kysely } from 'kysely';
import type { Dialect } from '../connect.js';

type MigrationDb = Kysely<unknown>;

export function serveInstancesMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema
        .createTable('serve_instances')
        .addColumn('instance_id', 'text', (c) => c.primaryKey())
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('pid', 'integer', (c) => c.notNull())
        .addColumn('pid_start', 'text')
        // 1: serves beside others (PostgreSQL + Redis); 0: alone (its budgets live in its process).
        .addColumn('shared', 'integer', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        // The last heartbeat by the database's clock (PostgreSQL; SQLite: the instance's)…
        .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
        // …and by the instance's own clock at the same moment.
        .addColumn('own_heartbeat_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  };
}
