import { afterEach, describe, expect, it } from 'vitest';
import { createPgSchema, PG_URL, type PgSchema } from '../../test/helpers/pg.js';
import { type Db, openDatabase } from './connect.js';
import { migrateToLatest } from './migrate.js';

describe.skipIf(!PG_URL)('migrations on a PostgreSQL database with another installation in it', () => {
  const opened: Db[] = [];
  const schemas: PgSchema[] = [];
  afterEach(async () => {
    for (const db of opened.splice(0)) await db.close();
    for (const schema of schemas.splice(0)) await schema.drop();
  });
  const installation = async () => {
    const schema = await createPgSchema(PG_URL ?? '');
    schemas.push(schema);
    const db = openDatabase({ kind: 'postgres', url: schema.url });
    opened.push(db);
    return db;
  };

  it('migrates a schema of its own although another schema of the database already has its tables', async () => {
    const first = await installation();
    await migrateToLatest(first);
    // Kysely's migrator alone took the first schema's tables for the second's and failed with
    // "relation tollgate_migrations_lock does not exist".
    const second = await installation();
    await migrateToLatest(second);
    await migrateToLatest(second); // and again: nothing pending, nothing broken
    const applied = await second.kysely
      .selectFrom('tollgate_migrations' as never)
      .select('name' as never)
      .execute();
    expect(applied.length).toBeGreaterThanOrEqual(9);
  });
});
