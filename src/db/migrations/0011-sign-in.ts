// Sign-in for people: server-side sessions (only a keyed hash of the id is stored), single-use invite
// links, password hashes, OIDC subjects, a disabled state set by de-provisioning, and the profile an
// admin sets as the ceiling of the keys a person may issue to themselves.
import type { Kysely } from 'kysely';
import type { Dialect } from '../connect.js';

type MigrationDb = Kysely<unknown>;

export function signInMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('hash', 'text', (c) => c.notNull().unique())
        // null = a session opened with the installation's admin token (no person behind it).
        .addColumn('user_id', 'text')
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('ended_at', 'bigint')
        .addColumn('ended_reason', 'text')
        .addColumn('ip', 'text')
        .addColumn('user_agent', 'text')
        // OIDC: the provider's refresh token, sealed under the master key, and when it was last used.
        .addColumn('oidc_refresh', 'text')
        .addColumn('oidc_checked_at', 'bigint')
        .execute();
      await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
      await db.schema
        .createTable('invites')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('hash', 'text', (c) => c.notNull().unique())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .execute();
      await db.schema.createIndex('invites_user').on('invites').column('user_id').execute();
      await db.schema.alterTable('users').addColumn('password_hash', 'text').execute();
      await db.schema.alterTable('users').addColumn('oidc_subject', 'text').execute();
      await db.schema.alterTable('users').addColumn('disabled_at', 'bigint').execute();
      await db.schema.alterTable('users').addColumn('key_ceiling', 'text').execute();
    },
  };
}
