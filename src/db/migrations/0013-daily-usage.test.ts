import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Migrator, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../connect.js';
import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE, migrationsFor } from '../migrate.js';

describe('migration 0013: daily usage', () => {
  let dir: string | null = null;
  let db: Db | null = null;
  afterEach(async () => {
    await db?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('creates usage_daily empty, clustered by day and rollup key, with no zone in meta', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-0013-'));
    db = openDatabase({ kind: 'sqlite', path: join(dir, 'old.db') });
    const migrator = new Migrator({
      db: db.kysely,
      provider: { getMigrations: async () => migrationsFor('sqlite') },
      migrationTableName: MIGRATION_TABLE,
      migrationLockTableName: MIGRATION_LOCK_TABLE,
    });
    expect((await migrator.migrateTo('0012-usage-rollups')).error).toBeUndefined();
    const rollup = {
      bucket: Date.UTC(2026, 5, 1, 10, 0),
      key_id: 'key_a',
      model: 'claude-haiku-4-5',
      credential_id: '',
      user_id: 'usr_a',
      team_id: '',
      requests: 1,
      errors: 0,
      input_tokens: 10,
      output_tokens: 5,
      cache_write_5m_tokens: 0,
      cache_write_1h_tokens: 0,
      cache_read_tokens: 0,
      web_search_requests: 0,
      cost_micro: 100,
      saved_micro: 0,
      estimated: 0,
    };
    await db.kysely.insertInto('usage_rollups').values(rollup).execute();
    expect((await migrator.migrateTo('0013-daily-usage')).error).toBeUndefined();
    // The zone is the configuration's, unknown here: nothing is filled, nothing claims a zone.
    expect(await db.kysely.selectFrom('usage_daily').selectAll().execute()).toEqual([]);
    const zone = await db.kysely
      .selectFrom('meta')
      .select('value')
      .where('key', '=', 'usage_daily_timezone')
      .executeTakeFirst();
    expect(zone).toBeUndefined();
    const table = await sql<{
      sql: string;
    }>`select sql from sqlite_master where type = 'table' and name = 'usage_daily'`.execute(db.kysely);
    expect(table.rows[0]?.sql).toMatch(/without rowid$/i);
    const pk = await sql<{ name: string; pk: number }>`pragma table_info(usage_daily)`.execute(db.kysely);
    expect(
      pk.rows
        .filter((c) => c.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((c) => c.name),
    ).toEqual(['day', 'key_id', 'model', 'credential_id', 'user_id', 'team_id']);
    // The same key twice is refused (positive control: a different day is accepted).
    const { bucket: _b, ...ids } = rollup;
    await db.kysely
      .insertInto('usage_daily')
      .values({ ...ids, day: 0 })
      .execute();
    await db.kysely
      .insertInto('usage_daily')
      .values({ ...ids, day: 86_400_000 })
      .execute();
    await expect(
      db.kysely
        .insertInto('usage_daily')
        .values({ ...ids, day: 0 })
        .execute(),
    ).rejects.toThrow(/UNIQUE|PRIMARY/i);
  });
});
