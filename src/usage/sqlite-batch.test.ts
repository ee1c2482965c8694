import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../db/connect.js';
import { migrateToLatest } from '../db/migrate.js';
import type { UsageRecordTable } from '../db/schema.js';
import { buildBatch } from './ledger-batch.js';
import { createSqliteBatchWriter } from './sqlite-batch.js';

describe('SQLite ledger batch writer', () => {
  let dir: string | null = null;
  let db: Db | null = null;
  afterEach(async () => {
    await db?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('stores every column of a usage row where it belongs, and adds daily spend per scope', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-batch-'));
    db = openDatabase({ kind: 'sqlite', path: join(dir, 'ledger.db') });
    await migrateToLatest(db);
    const sqlite = db.sqlite;
    if (!sqlite) throw new Error('expected a SQLite handle');
    // A distinct value in every column, so a column written to the wrong place cannot go unnoticed.
    const record: UsageRecordTable = {
      id: 'req_1',
      at: Date.UTC(2026, 10, 22, 12),
      endpoint: 'messages',
      key_id: 'key_1',
      user_id: 'usr_1',
      team_id: 'team_1',
      service_user_id: 'usr_svc',
      credential_id: 'cred_1',
      model: 'claude-haiku-4-5',
      input_tokens: 11,
      output_tokens: 12,
      cache_write_5m_tokens: 13,
      cache_write_1h_tokens: 14,
      cache_read_tokens: 15,
      web_search_requests: 16,
      cost_micro: 17,
      saved_micro: 18,
      latency_ms: 19,
      status: 200,
      outcome: 'ok',
      upstream_request_id: 'req_up',
      stream: 1,
      partial: 0,
      estimated: 1,
      attempts: 2,
    };
    const writer = createSqliteBatchWriter(sqlite);
    writer.write(buildBatch([record, { ...record, id: 'req_2', at: record.at + 1 }], 'org_1'));
    const rows = await db.kysely.selectFrom('usage_records').selectAll().orderBy('at').execute();
    expect(rows.map((r) => ({ ...r, at: Number(r.at) }))).toEqual([
      record,
      { ...record, id: 'req_2', at: record.at + 1 },
    ]);
    const spend = await db.kysely.selectFrom('spend').selectAll().orderBy('scope_type').execute();
    expect(spend.map((s) => [s.scope_type, s.scope_id, Number(s.spent_micro)])).toEqual([
      ['key', 'key_1', 34],
      ['org', 'org_1', 34],
      ['team', 'team_1', 34],
      ['user', 'usr_1', 34],
    ]);

    // Several keys of one user, zero-cost rows, and a batch whose days alternate across midnight.
    const midnight = Date.UTC(2026, 10, 23);
    const more = [
      { ...record, id: 'req_3', key_id: 'key_2', at: midnight - 5, cost_micro: 100 },
      { ...record, id: 'req_4', key_id: 'key_2', at: midnight + 5, cost_micro: 10 },
      { ...record, id: 'req_5', key_id: 'key_2', at: midnight - 4, cost_micro: 1_000 },
      { ...record, id: 'req_6', key_id: 'key_3', at: midnight + 6, cost_micro: 0 },
      { ...record, id: 'req_7', key_id: 'key_1', team_id: null, at: midnight + 7, cost_micro: 5 },
    ];
    writer.write(buildBatch(more, 'org_1'));
    const daily = await db.kysely
      .selectFrom('spend')
      .selectAll()
      .orderBy(['scope_type', 'scope_id', 'period_start'])
      .execute();
    expect(
      daily.map((s) => [
        s.scope_type,
        s.scope_id,
        Number(s.period_start) === midnight,
        Number(s.spent_micro),
      ]),
    ).toEqual([
      ['key', 'key_1', false, 34],
      ['key', 'key_1', true, 5],
      ['key', 'key_2', false, 1_100],
      ['key', 'key_2', true, 10],
      ['org', 'org_1', false, 1_134],
      ['org', 'org_1', true, 15],
      ['team', 'team_1', false, 1_134],
      ['team', 'team_1', true, 10],
      ['user', 'usr_1', false, 1_134],
      ['user', 'usr_1', true, 15],
    ]);
  });
});
