// One server per database: the serving process holds a lease (one row, heartbeated). Budgets and rate
// limits live in the serving process, so a second server on the same database would multiply them.
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../connect.js';

// Migrations run against the schema as it was then, so they are not typed against today's tables.
type MigrationDb = Kysely<unknown>;

export function serveLeaseMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema
        .createTable('serve_lease')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('holder', 'text')
        .addColumn('host', 'text')
        .addColumn('pid', 'integer')
        .addColumn('pid_start', 'text')
        .addColumn('started_at', 'bigint')
        .addColumn('heartbeat_at', 'bigint')
        .execute();
      // The row always exists, so taking the lease is an update of a locked row on both dialects.
      await sql`insert into serve_lease (id) values (1)`.execute(db);
    },
  };
}
