// Each serving instance records the version of the master key it was started with, so the step that
// completes a rotation of a supplied key can refuse while an instance would not restart (it still has
// only the previous key in its key source). Null: not recorded (treated as unknown, never as old).
import type { Kysely } from 'kysely';

type MigrationDb = Kysely<unknown>;

export function instanceMasterKeyMigration() {
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema.alterTable('serve_instances').addColumn('master_key_version', 'integer').execute();
    },
  };
}
