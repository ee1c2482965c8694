import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createPgSchema, PG_URL, type PgSchema } from '../../test/helpers/pg.js';
import { AppError } from '../lib/errors.js';
import { type Db, openDatabase } from './connect.js';
import { assertNotNewer, migrateToLatest, migrationsFor } from './migrate.js';

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

// Forward only: a database that went through a migration this program does not know (a newer Tollgate
// wrote it) is refused before anything is written; on both engines, beside the same database accepted.
describe.each([
  ['SQLite', async () => ({ db: openDatabase({ kind: 'sqlite', path: ':memory:' }), drop: async () => {} })],
  ...(PG_URL
    ? [
        [
          'PostgreSQL',
          async () => {
            const schema = await createPgSchema(PG_URL ?? '');
            return { db: openDatabase({ kind: 'postgres', url: schema.url }), drop: () => schema.drop() };
          },
        ] as const,
      ]
    : []),
] as const)('forward-only migrations on %s', (_name, open) => {
  it('refuses a database newer than the program, naming both migrations, and writes nothing', async () => {
    const { db, drop } = await open();
    try {
      await assertNotNewer(db); // a new, empty database: nothing to compare
      await migrateToLatest(db);
      const known = Object.keys(migrationsFor(db.dialect)).sort();
      const newest = known.at(-1) ?? '';
      await assertNotNewer(db); // the control: this program's own database
      await migrateToLatest(db);
      await sql`insert into tollgate_migrations (name, timestamp) values ('9999-from-the-future', 'x')`.execute(
        db.kysely,
      );
      const names = async () =>
        (await sql<{ name: string }>`select name from tollgate_migrations order by name`.execute(db.kysely))
          .rows;
      const before = await names();
      const refusal = await migrateToLatest(db).catch((e: unknown) => e);
      expect(refusal).toBeInstanceOf(AppError);
      expect((refusal as AppError).message).toContain('9999-from-the-future');
      expect((refusal as AppError).message).toContain(newest);
      expect((refusal as AppError).details).toEqual({
        database_migration: '9999-from-the-future',
        binary_migration: newest,
      });
      expect(await names()).toEqual(before);
      // A list with one more entry (a newer program) accepts the same database.
      await assertNotNewer(db, [...known, '9999-from-the-future']);
    } finally {
      await db.close();
      await drop();
    }
  });
});
