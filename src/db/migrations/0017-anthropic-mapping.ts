// Tollgate's objects tied to Anthropic's: teams mapped to Anthropic workspaces (the workspace whose
// monthly spend limit mirrors the team's budget, `anthropic limits sync`), and the old keys of
// `credential rotate --retire`, to be disabled through the Admin API once the grace ends.
import type { Kysely } from 'kysely';
import type { Dialect } from '../connect.js';

type MigrationDb = Kysely<unknown>;

export function anthropicMappingMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema.alterTable('teams').addColumn('anthropic_workspace_id', 'text').execute();
      await db.schema
        .createTable('key_retirements')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('credential_id', 'text', (c) => c.notNull())
        .addColumn('credential_name', 'text', (c) => c.notNull())
        // The old secret's hint in Anthropic's `partial_key_hint` format (never the secret).
        .addColumn('old_hint', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        // When the rotation's grace ends: the old key is disabled from then on.
        .addColumn('due_at', 'bigint', (c) => c.notNull())
        // pending | done | no_match (terminal: no Anthropic key has the hint)
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        // A pending row is tried at or after this (also a runner's claim while it works on it).
        .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
        .addColumn('anthropic_key_id', 'text')
        .addColumn('last_error', 'text')
        .addColumn('done_at', 'bigint')
        .execute();
      await db.schema
        .createIndex('key_retirements_due')
        .on('key_retirements')
        .columns(['state', 'next_attempt_at'])
        .execute();
    },
  };
}
