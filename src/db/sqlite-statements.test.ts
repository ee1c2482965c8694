import SQLite from 'better-sqlite3';
import { type Generated, Kysely, SqliteDialect } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { reusingStatements } from './sqlite-statements.js';

const open: SQLite.Database[] = [];
function memory(): SQLite.Database {
  const db = new SQLite(':memory:');
  db.exec('create table t (id integer primary key, name text)');
  open.push(db);
  return db;
}
afterEach(() => {
  for (const db of open.splice(0)) if (db.open) db.close();
});

describe('reused SQLite statements', () => {
  it('prepares each SQL text once and keeps the most recently used', () => {
    const db = reusingStatements(memory(), 2);
    const a = db.prepare('select 1');
    expect(db.prepare('select 1')).toBe(a);
    const b = db.prepare('select 2');
    db.prepare('select 1'); // touched: now the most recent
    db.prepare('select 3'); // evicts `select 2`
    expect(db.prepare('select 1')).toBe(a);
    expect(db.prepare('select 2')).not.toBe(b);
  });

  it('gives a fresh statement while the cached one is still iterating', () => {
    const handle = memory();
    handle.exec("insert into t (name) values ('a'), ('b')");
    const db = reusingStatements(handle);
    const first = db.prepare('select name from t order by id');
    const rows = first.iterate([]);
    expect(rows.next().value).toEqual({ name: 'a' });
    const second = db.prepare('select name from t order by id');
    expect(second).not.toBe(first);
    expect(second.all([])).toEqual([{ name: 'a' }, { name: 'b' }]);
    rows.return?.();
    expect(db.prepare('select name from t order by id')).toBe(first);
  });

  it('serves Kysely queries, parameters and streams included', async () => {
    const kysely = new Kysely<{ t: { id: Generated<number>; name: string } }>({
      dialect: new SqliteDialect({ database: reusingStatements(memory()) }),
    });
    for (const name of ['x', 'y', 'z']) await kysely.insertInto('t').values({ name }).execute();
    const one = (name: string) =>
      kysely.selectFrom('t').select('id').where('name', '=', name).executeTakeFirst();
    expect(await one('y')).toEqual({ id: 2 });
    expect(await one('z')).toEqual({ id: 3 });
    const streamed: string[] = [];
    for await (const row of kysely.selectFrom('t').select('name').orderBy('id').stream())
      streamed.push(row.name);
    expect(streamed).toEqual(['x', 'y', 'z']);
    await kysely.destroy();
  });
});
