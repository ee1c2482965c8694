// One-time enrollment codes for `coder bootstrap --enroll`: only an HMAC of each code is stored.
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../connect.js';

// Migrations run against the schema as it was then, so they are not typed against today's tables.
type MigrationDb = Kysely<unknown>;

export function enrollmentMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema
        .createTable('enrollment_codes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('code_hash', 'text', (c) => c.notNull().unique())
        .addColumn('model', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .addColumn('created_by', 'text', (c) => c.notNull())
        .execute();
      await sql`create index enrollment_codes_user on enrollment_codes (user_id)`.execute(db);
    },
  };
}
