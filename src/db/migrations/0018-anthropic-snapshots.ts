// What `tollgate anthropic sync` keeps beside the reports, so the reconciliation and the Claude Code
// activity can be read (dashboard, admin API) without calling Anthropic: the organisation's API keys as
// last listed (id, name, partial_key_hint — never a secret), and Anthropic's Claude Code analytics per
// UTC day and actor. Both are replaced by each sync of the days (keys: as a whole) they cover.
import type { Kysely } from 'kysely';
import type { Dialect } from '../connect.js';

type MigrationDb = Kysely<unknown>;

export function anthropicSnapshotsMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema
        .createTable('anthropic_api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('partial_key_hint', 'text')
        .addColumn('workspace_id', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('listed_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('anthropic_claude_code')
        .addColumn('day', 'text', (c) => c.notNull())
        // The actor's email (user_actor) or API key name (api_actor).
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('actor_kind', 'text', (c) => c.notNull())
        .addColumn('sessions', 'bigint', (c) => c.notNull())
        .addColumn('lines_added', 'bigint', (c) => c.notNull())
        .addColumn('lines_removed', 'bigint', (c) => c.notNull())
        .addColumn('commits', 'bigint', (c) => c.notNull())
        .addColumn('pull_requests', 'bigint', (c) => c.notNull())
        .addColumn('tool_accepted', 'bigint', (c) => c.notNull())
        .addColumn('tool_rejected', 'bigint', (c) => c.notNull())
        // Anthropic's estimate summed over models, micro-USD (cents × 10,000, rounded).
        .addColumn('estimated_micro', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('anthropic_claude_code_pk', ['day', 'actor_kind', 'actor'])
        .execute();
    },
  };
}
