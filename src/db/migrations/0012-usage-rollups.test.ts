import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Migrator, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../connect.js';
import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE, migrateToLatest, migrationsFor } from '../migrate.js';
import type { UsageRecordTable } from '../schema.js';

describe('migration 0012: usage rollups', () => {
  let dir: string | null = null;
  let db: Db | null = null;
  afterEach(async () => {
    await db?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('rolls up the Messages records written before it, per 15-minute bucket and rollup key', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-0012-'));
    db = openDatabase({ kind: 'sqlite', path: join(dir, 'old.db') });
    const migrator = new Migrator({
      db: db.kysely,
      provider: { getMigrations: async () => migrationsFor('sqlite') },
      migrationTableName: MIGRATION_TABLE,
      migrationLockTableName: MIGRATION_LOCK_TABLE,
    });
    expect((await migrator.migrateTo('0011-sign-in')).error).toBeUndefined();
    const base = Date.UTC(2026, 5, 1, 10, 0);
    const row = (id: string, at: number, over: Partial<UsageRecordTable> = {}): UsageRecordTable => ({
      id,
      at,
      endpoint: 'messages',
      key_id: 'key_a',
      user_id: 'usr_a',
      team_id: null,
      service_user_id: null,
      credential_id: null,
      model: 'claude-haiku-4-5',
      input_tokens: 10,
      output_tokens: 5,
      cache_write_5m_tokens: 1,
      cache_write_1h_tokens: 2,
      cache_read_tokens: 3,
      web_search_requests: 0,
      cost_micro: 100,
      saved_micro: 7,
      latency_ms: 1,
      status: 200,
      outcome: 'ok',
      upstream_request_id: null,
      stream: 0,
      partial: 0,
      estimated: 0,
      attempts: 1,
      ...over,
    });
    await db.kysely
      .insertInto('usage_records')
      .values([
        row('r1', base),
        row('r2', base + 899_999, { status: 429, estimated: 1 }),
        row('r3', base + 900_000, { team_id: 'team_a', credential_id: 'cred_a' }),
        row('r4', base + 5, { endpoint: 'count_tokens' }),
      ])
      .execute();
    await migrateToLatest(db);
    const rollups = await db.kysely.selectFrom('usage_rollups').selectAll().orderBy('bucket').execute();
    expect(rollups.map((r) => ({ ...r, bucket: Number(r.bucket) }))).toEqual([
      {
        bucket: base,
        key_id: 'key_a',
        model: 'claude-haiku-4-5',
        credential_id: '',
        user_id: 'usr_a',
        team_id: '',
        requests: 1,
        errors: 1,
        input_tokens: 20,
        output_tokens: 10,
        cache_write_5m_tokens: 2,
        cache_write_1h_tokens: 4,
        cache_read_tokens: 6,
        web_search_requests: 0,
        cost_micro: 200,
        saved_micro: 14,
        estimated: 1,
      },
      {
        bucket: base + 900_000,
        key_id: 'key_a',
        model: 'claude-haiku-4-5',
        credential_id: 'cred_a',
        user_id: 'usr_a',
        team_id: 'team_a',
        requests: 1,
        errors: 0,
        input_tokens: 10,
        output_tokens: 5,
        cache_write_5m_tokens: 1,
        cache_write_1h_tokens: 2,
        cache_read_tokens: 3,
        web_search_requests: 0,
        cost_micro: 100,
        saved_micro: 7,
        estimated: 0,
      },
    ]);
    const indexes = await sql<{
      name: string;
    }>`select name from sqlite_master where type = 'index' and tbl_name = 'usage_records'`.execute(db.kysely);
    expect(indexes.rows.map((r) => r.name)).not.toContain('usage_user_at');
  });
});
