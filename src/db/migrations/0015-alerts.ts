// Alerts (budget thresholds, credentials marked invalid, keys and credentials past the age policy): one
// row per condition, unique, inserted before anything is sent — so "sent once" is a fact of the database,
// shared by every process on it — with the webhook delivery state that lets a restart resume.
import type { Kysely } from 'kysely';
import type { Dialect } from '../connect.js';

type MigrationDb = Kysely<unknown>;

export function alertsMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await db.schema
        .createTable('alerts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        // e.g. `budget:user:usr_…:month:1764547200000:0.8`: at most one alert per condition, ever.
        .addColumn('condition', 'text', (c) => c.notNull().unique())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('target_type', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .addColumn('raised_at', 'bigint', (c) => c.notNull())
        .addColumn('message', 'text', (c) => c.notNull())
        // The JSON body the webhook receives (never the webhook URL).
        .addColumn('payload', 'text', (c) => c.notNull())
        // pending | delivered | failed | off (no webhook configured when it was raised)
        .addColumn('delivery', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', 'bigint')
        // A sender's claim on the row while it posts it (another process skips it until then).
        .addColumn('lease_until', 'bigint')
        .addColumn('delivered_at', 'bigint')
        .addColumn('last_error', 'text')
        .execute();
      await db.schema.createIndex('alerts_raised').on('alerts').column('raised_at').execute();
      await db.schema
        .createIndex('alerts_due')
        .on('alerts')
        .columns(['delivery', 'next_attempt_at'])
        .execute();
    },
  };
}
