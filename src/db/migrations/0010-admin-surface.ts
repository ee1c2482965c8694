// The admin and self-service surface: personal admin API tokens, key profiles, and per user/team
// bring-your-own-key policy and preferred model.
import type { Kysely } from 'kysely';
import type { Dialect } from '../connect.js';

type MigrationDb = Kysely<unknown>;

export function adminSurfaceMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema
        .createTable('admin_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('hash', 'text', (c) => c.notNull().unique())
        .addColumn('hint', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema.createIndex('admin_tokens_user').on('admin_tokens').column('user_id').execute();
      await db.schema
        .createTable('key_profiles')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text')
        .addColumn('policy', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.alterTable('users').addColumn('byok', 'text').execute();
      await db.schema.alterTable('users').addColumn('preferred_model', 'text').execute();
      await db.schema.alterTable('teams').addColumn('byok', 'text').execute();
    },
  };
}
