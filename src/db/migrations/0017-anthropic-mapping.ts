// Teams mapped to Anthropic workspaces: the workspace whose monthly spend limit mirrors the team's
// monthly budget (`tollgate anthropic limits sync`). Null = not mapped.
import type { Kysely } from 'kysely';
import type { Dialect } from '../connect.js';

type MigrationDb = Kysely<unknown>;

export function anthropicMappingMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema.alterTable('teams').addColumn('anthropic_workspace_id', 'text').execute();
    },
  };
}
