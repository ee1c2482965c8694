// The initial schema: identity, vault, gateway keys, budgets, audit chain, change feed.
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../connect.js';

// Migrations run against the schema as it was then, so they are not typed against today's tables.
type MigrationDb = Kysely<unknown>;

export function initialMigration(dialect: Dialect) {
  const binary = dialect === 'postgres' ? 'bytea' : 'blob';
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema
        .createTable('meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('teams')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('email', 'text')
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('team_id', 'text', (c) => c.references('teams.id'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('removed_at', 'bigint')
        .execute();
      // Names are unique among users that exist; a removed user's name may be reused.
      await sql`create unique index users_name_live on users (name) where removed_at is null`.execute(db);

      await db.schema
        .createTable('credentials')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('owner_type', 'text', (c) => c.notNull())
        .addColumn('owner_id', 'text')
        .addColumn('environment', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('preferred', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('hint', 'text', (c) => c.notNull())
        .addColumn('ciphertext', sql.raw(binary), (c) => c.notNull())
        .addColumn('wrapped_key', sql.raw(binary), (c) => c.notNull())
        .addColumn('key_version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .addColumn('rotated_at', 'bigint')
        .addColumn('removed_at', 'bigint')
        .execute();
      await sql`create unique index credentials_name_live on credentials (name) where removed_at is null`.execute(
        db,
      );
      await sql`create index credentials_owner on credentials (owner_type, owner_id)`.execute(db);

      await db.schema
        .createTable('gateway_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('name', 'text')
        .addColumn('hash', 'text', (c) => c.notNull().unique())
        .addColumn('hint', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('models', 'text')
        .addColumn('tools', 'text')
        .addColumn('max_tokens', 'integer')
        .addColumn('max_cost_per_request_micro', 'bigint')
        .addColumn('rpm', 'integer')
        .addColumn('input_tpm', 'integer')
        .addColumn('output_tpm', 'integer')
        .addColumn('concurrency', 'integer')
        .addColumn('environment', 'text')
        .addColumn('credential_id', 'text', (c) => c.references('credentials.id'))
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('rotated_to', 'text')
        .addColumn('last_used_at', 'bigint')
        .execute();
      await sql`create index gateway_keys_user on gateway_keys (user_id)`.execute(db);

      await db.schema
        .createTable('budgets')
        .addColumn('scope_type', 'text', (c) => c.notNull())
        .addColumn('scope_id', 'text', (c) => c.notNull())
        .addColumn('period', 'text', (c) => c.notNull())
        .addColumn('limit_micro', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('budgets_pk', ['scope_type', 'scope_id', 'period'])
        .execute();

      await db.schema
        .createTable('audit_log')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target_type', 'text')
        .addColumn('target_id', 'text')
        .addColumn('details', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();

      // The chain head, MAC'd with a key derived from the master key, lives outside audit_log so
      // truncating the newest entries or rewriting the whole table is detected.
      await db.schema
        .createTable('audit_anchor')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('mac', 'text', (c) => c.notNull())
        .execute();

      // A feed of changed objects that running servers poll to drop cached state within a second.
      await db.schema
        .createTable('change_log')
        .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .execute();
    },
  };
}
