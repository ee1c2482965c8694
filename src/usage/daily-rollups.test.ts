import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../db/connect.js';
import { migrateToLatest } from '../db/migrate.js';
import type { UsageRecordTable } from '../db/schema.js';
import { readMeta } from '../install/meta.repo.js';
import { ensureDailyRollups } from './daily-rollups.js';
import { createLedger } from './ledger.js';
import { summarise } from './usage.repo.js';

function record(
  id: string,
  at: string,
  cost: number,
  over: Partial<UsageRecordTable> = {},
): UsageRecordTable {
  return {
    id,
    at: Date.parse(at),
    endpoint: 'messages',
    key_id: 'key_a',
    user_id: 'usr_a',
    team_id: null,
    service_user_id: null,
    credential_id: null,
    model: 'claude-haiku-4-5',
    input_tokens: 10,
    output_tokens: 5,
    cache_write_5m_tokens: 0,
    cache_write_1h_tokens: 0,
    cache_read_tokens: 0,
    web_search_requests: 0,
    cost_micro: cost,
    saved_micro: 0,
    latency_ms: 1,
    status: 200,
    outcome: 'ok',
    upstream_request_id: null,
    stream: 0,
    partial: 0,
    estimated: 0,
    attempts: 1,
    ...over,
  };
}

describe('ensureDailyRollups', () => {
  let dir: string;
  let db: Db;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-daily-'));
    db = openDatabase({ kind: 'sqlite', path: join(dir, 'daily.db') });
    await migrateToLatest(db);
    // Written by a ledger without a zone (UTC days), on both sides of Kathmandu's midnight (18:15 UTC).
    const ledger = createLedger(db, 'org_test');
    await Promise.all([
      ledger.append(record('r1', '2026-06-01T18:14:59.999Z', 1)),
      ledger.append(record('r2', '2026-06-01T18:15:00Z', 20, { team_id: 'team_a' })),
      ledger.append(record('r3', '2026-06-02T12:00:00Z', 300, { status: 500, outcome: 'upstream_error' })),
      ledger.append(record('r4', '2026-06-02T12:00:01Z', 4000, { endpoint: 'count_tokens' })),
    ]);
    await ledger.close();
  });
  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const days = async () =>
    (await db.kysely.selectFrom('usage_daily').selectAll().orderBy('day').orderBy('team_id').execute()).map(
      (r) => [new Date(Number(r.day)).toISOString(), r.team_id, Number(r.cost_micro), Number(r.errors)],
    );

  it('rebuilds the table per day of the new zone, stores the zone, and does nothing the second time', async () => {
    expect(await days()).toEqual([
      ['2026-06-01T00:00:00.000Z', '', 1, 0],
      ['2026-06-01T00:00:00.000Z', 'team_a', 20, 0],
      ['2026-06-02T00:00:00.000Z', '', 300, 1],
    ]);
    expect(await readMeta(db, 'usage_daily_timezone')).toBeNull();
    expect(await ensureDailyRollups(db, 'Asia/Kathmandu')).toBe(true);
    expect(await readMeta(db, 'usage_daily_timezone')).toBe('Asia/Kathmandu');
    expect(await days()).toEqual([
      ['2026-05-31T18:15:00.000Z', '', 1, 0],
      ['2026-06-01T18:15:00.000Z', '', 300, 1],
      ['2026-06-01T18:15:00.000Z', 'team_a', 20, 0],
    ]);
    expect(await ensureDailyRollups(db, 'Asia/Kathmandu')).toBe(false);
    // Back to UTC: the ledger's own UTC days again.
    expect(await ensureDailyRollups(db, 'UTC')).toBe(true);
    expect(await days()).toEqual([
      ['2026-06-01T00:00:00.000Z', '', 1, 0],
      ['2026-06-01T00:00:00.000Z', 'team_a', 20, 0],
      ['2026-06-02T00:00:00.000Z', '', 300, 1],
    ]);
  });

  it('is what summarise reads for whole days of its zone, and only then', async () => {
    await ensureDailyRollups(db, 'Asia/Kathmandu');
    const range = { since: Date.parse('2026-05-31T18:15:00Z'), until: Date.parse('2026-06-02T18:15:00Z') };
    const cost = async (timeZone: string) =>
      (await summarise(db, 'day', range, timeZone)).map((r) => [r.group, r.cost_micro_usd]);
    expect(await cost('Asia/Kathmandu')).toEqual([
      ['2026-06-01', 1],
      ['2026-06-02', 320],
    ]);
    // Tamper with the daily table: the Kathmandu answer follows it (it is read), the UTC one does not.
    await db.kysely
      .updateTable('usage_daily')
      .set({ cost_micro: 7 })
      .where('team_id', '=', 'team_a')
      .execute();
    expect(await cost('Asia/Kathmandu')).toEqual([
      ['2026-06-01', 1],
      ['2026-06-02', 307],
    ]);
    expect(await cost('UTC')).toEqual([
      ['2026-06-01', 21],
      ['2026-06-02', 300],
    ]);
    // A range that holds no whole Kathmandu day reads the rollups and records only.
    const partial = { since: range.since + 900_000, until: range.until - 900_000 };
    expect(
      (await summarise(db, 'team', partial, 'Asia/Kathmandu')).map((r) => [r.group, r.cost_micro_usd]),
    ).toEqual([
      [null, 301],
      ['team_a', 20],
    ]);
  });
});
