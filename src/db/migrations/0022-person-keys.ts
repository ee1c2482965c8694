// One data key per person, wrapped by the master key: the personal fields of their audit entries are
// sealed under it, so a purge can destroy the key (crypto-shredding) while the entries stay in the
// hash chain. A purged person's row is kept as a tombstone (empty blobs, shredded_at set): no key is
// ever made again for that id, and the listing can tell "purged" from "never had one".
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../connect.js';

type MigrationDb = Kysely<unknown>;

export function personKeysMigration(dialect: Dialect) {
  const binary = dialect === 'postgres' ? 'bytea' : 'blob';
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema
        .createTable('person_keys')
        .addColumn('subject_id', 'text', (c) => c.primaryKey())
        .addColumn('ciphertext', sql.raw(binary), (c) => c.notNull())
        .addColumn('wrapped_key', sql.raw(binary), (c) => c.notNull())
        .addColumn('key_version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('shredded_at', 'bigint')
        .execute();
    },
  };
}
