// PostgreSQL specifics of backup and restore: a table larger than one cursor fetch is read whole, and
// after a restore the sequence of `change_log.seq` (bigserial) continues past the restored ids.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connect.js';
import { PG_URL } from '../helpers/pg.js';
import { type Home, makeHome } from './fixture.js';

const EXTRA = 2500;

describe.skipIf(!PG_URL)('backup and restore on PostgreSQL', () => {
  const homes: Home[] = [];
  let source: Home;
  let file: string;

  const pgOf = (home: Home) => openDatabase({ kind: 'postgres', url: home.env.TOLLGATE_DATABASE_URL ?? '' });

  beforeAll(async () => {
    source = await makeHome('postgres');
    homes.push(source);
    expect((await source.run(['init'])).code).toBe(0);
    const db = pgOf(source);
    try {
      const rows = Array.from({ length: EXTRA }, (_v, i) => ({ at: i, kind: 'test', target_id: `t${i}` }));
      for (let i = 0; i < rows.length; i += 500)
        await db.kysely
          .insertInto('change_log')
          .values(rows.slice(i, i + 500))
          .execute();
    } finally {
      await db.close();
    }
    file = join(source.home, '..', 'large.tgbak');
    const backup = await source.run(['backup', '--out', file]);
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
  }, 120_000);

  afterAll(async () => {
    for (const home of homes) await home.cleanup();
  });

  const sourceCount = async () => {
    const db = pgOf(source);
    try {
      const row = await db.kysely
        .selectFrom('change_log')
        .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.max('seq').as('max')])
        .where('kind', '=', 'test')
        .executeTakeFirstOrThrow();
      return { n: Number(row.n), max: Number(row.max) };
    } finally {
      await db.close();
    }
  };

  it('carries every row of a table larger than one cursor fetch', async () => {
    const text = await readFile(file, 'utf8');
    const trailer = JSON.parse(text.trim().split('\n').at(-1) ?? '{}') as { rows: Record<string, number> };
    expect(trailer.rows.change_log).toBeGreaterThanOrEqual(EXTRA);
    expect(text.split('\n').filter((l) => l.includes('"test","t')).length).toBe(EXTRA);
    expect((await sourceCount()).n).toBe(EXTRA);
  });

  it.each(['postgres', 'sqlite'] as const)(
    'restores them into %s, new ids continuing after them',
    async (engine) => {
      const home = await makeHome(engine, { masterKeyFrom: source.home });
      homes.push(home);
      const restored = await home.run(['restore', file]);
      expect(restored.stderr).toBe('');
      expect(restored.code).toBe(0);
      const { max } = await sourceCount();
      const url = home.env.TOLLGATE_DATABASE_URL;
      const db = openDatabase(
        url ? { kind: 'postgres', url } : { kind: 'sqlite', path: join(home.home, 'tollgate.db') },
      );
      try {
        const count = await db.kysely
          .selectFrom('change_log')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('kind', '=', 'test')
          .executeTakeFirstOrThrow();
        expect(Number(count.n)).toBe(EXTRA);
        // A fresh row gets the next id: without the sequence set past the restored ids it would get 1
        // (PostgreSQL) and collide with the restored row of that id.
        const next = await db.kysely
          .insertInto('change_log')
          .values({ at: 0, kind: 'after', target_id: 'x' })
          .returning('seq')
          .executeTakeFirstOrThrow();
        expect(Number(next.seq)).toBeGreaterThan(max);
      } finally {
        await db.close();
      }
    },
  );
});
