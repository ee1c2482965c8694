import { Migrator, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { databaseTargets } from '../../../test/helpers/databases.js';
import type { Db } from '../connect.js';
import {
  ensureMigrationTables,
  MIGRATION_LOCK_TABLE,
  MIGRATION_TABLE,
  migrateToLatest,
  migrationsFor,
} from '../migrate.js';

const row = {
  day: Date.UTC(2026, 5, 1),
  key_id: 'key_a',
  model: 'claude-haiku-4-5',
  credential_id: '',
  user_id: 'usr_a',
  team_id: 'team_a',
  requests: 3,
  errors: 1,
  input_tokens: 10,
  output_tokens: 5,
  cache_write_5m_tokens: 2,
  cache_write_1h_tokens: 0,
  cache_read_tokens: 7,
  web_search_requests: 0,
  cost_micro: 100,
  saved_micro: 4,
  estimated: 0,
};

async function primaryKey(db: Db): Promise<string[]> {
  if (db.dialect === 'sqlite') {
    const cols = await sql<{ name: string; pk: number }>`pragma table_info(usage_daily)`.execute(db.kysely);
    return cols.rows
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
  }
  const cols = await sql<{ name: string; conname: string }>`
    select a.attname as name, c.conname from pg_constraint c
    join lateral unnest(c.conkey) with ordinality as k(attnum, n) on true
    join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum
    where c.conrelid = 'usage_daily'::regclass and c.contype = 'p' order by k.n`.execute(db.kysely);
  expect(new Set(cols.rows.map((c) => c.conname))).toEqual(new Set(['usage_daily_pkey']));
  return cols.rows.map((c) => c.name);
}

const targets = databaseTargets();

describe.each(targets)('migration 0014 on $name: daily usage in report order', (target) => {
  let close: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await close?.();
    close = null;
  });

  it('keeps every row and the zone, clusters by day, team, user, key (with planner statistics on PostgreSQL), and still refuses a duplicate', async () => {
    const opened = await target.open();
    close = opened.close;
    const { db } = opened;
    await ensureMigrationTables(db);
    const migrator = new Migrator({
      db: db.kysely,
      provider: { getMigrations: async () => migrationsFor(db.dialect) },
      migrationTableName: MIGRATION_TABLE,
      migrationLockTableName: MIGRATION_LOCK_TABLE,
    });
    expect((await migrator.migrateTo('0013-daily-usage')).error).toBeUndefined();
    const rows = [row, { ...row, user_id: 'usr_b', cost_micro: 7 }, { ...row, day: row.day + 86_400_000 }];
    await db.kysely.insertInto('usage_daily').values(rows).execute();
    await db.kysely
      .insertInto('meta')
      .values({ key: 'usage_daily_timezone', value: 'Asia/Kathmandu' })
      .execute();

    await migrateToLatest(db);
    expect(await primaryKey(db)).toEqual(['day', 'team_id', 'user_id', 'key_id', 'model', 'credential_id']);
    const kept = await db.kysely
      .selectFrom('usage_daily')
      .selectAll()
      .orderBy('day')
      .orderBy('user_id')
      .execute();
    expect(kept.map((r) => ({ ...r, day: Number(r.day), cost_micro: Number(r.cost_micro) }))).toMatchObject(
      rows.map((r) => ({ day: r.day, user_id: r.user_id, cost_micro: r.cost_micro })),
    );
    const zone = await db.kysely
      .selectFrom('meta')
      .select('value')
      .where('key', '=', 'usage_daily_timezone')
      .executeTakeFirst();
    expect(zone?.value).toBe('Asia/Kathmandu');
    // The same six ids twice are refused; another user on the same day is a row of its own.
    await expect(db.kysely.insertInto('usage_daily').values(row).execute()).rejects.toThrow(
      /UNIQUE|duplicate key/i,
    );
    await db.kysely
      .insertInto('usage_daily')
      .values({ ...row, user_id: 'usr_c' })
      .execute();
    expect((await db.kysely.selectFrom('usage_daily').select('day').execute()).length).toBe(4);
    if (db.dialect === 'postgres') {
      const stats = await sql<{ name: string; kinds: string }>`
        select s.stxname as name, array_to_string(s.stxkind, '') as kinds from pg_statistic_ext s
        where s.stxnamespace = (select oid from pg_namespace where nspname = current_schema())
        order by s.stxname`.execute(db.kysely);
      expect(stats.rows).toEqual([
        { name: 'usage_daily_owners', kinds: 'df' },
        { name: 'usage_rollups_owners', kinds: 'df' },
      ]);
    }
    if (db.dialect === 'sqlite') {
      const table = await sql<{
        sql: string;
      }>`select sql from sqlite_master where name = 'usage_daily'`.execute(db.kysely);
      expect(table.rows[0]?.sql).toMatch(/without rowid$/i);
    }
  });
});
