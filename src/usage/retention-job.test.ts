// The retention job of `tollgate serve`: prunes once at start, logs how many raw rows went, keeps the
// newer ones, and a close stops it; without a run nothing is deleted (control).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../db/connect.js';
import { migrateToLatest } from '../db/migrate.js';
import type { UsageRecordTable } from '../db/schema.js';
import { createLedger } from './ledger.js';
import { rawHorizon, retentionCutoff } from './retention.js';
import { startRetentionJob } from './retention-job.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 15, 12, 7);

function record(i: number, at: number): UsageRecordTable {
  return {
    id: `req_${i}`,
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
    cache_write_5m_tokens: 0,
    cache_write_1h_tokens: 0,
    cache_read_tokens: 0,
    web_search_requests: 0,
    cost_micro: 3,
    saved_micro: 0,
    latency_ms: 1,
    status: 200,
    outcome: 'ok',
    upstream_request_id: null,
    stream: 0,
    partial: 0,
    estimated: 0,
    attempts: 1,
  };
}

describe('the retention job', () => {
  let dir: string;
  let db: Db;
  const logs: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const logger = {
    info: (fields: Record<string, unknown>, message: string) => logs.push({ fields, message }),
    error: (fields: Record<string, unknown>, message: string) => logs.push({ fields, message }),
  } as unknown as Parameters<typeof startRetentionJob>[0]['logger'];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-retention-'));
    db = openDatabase({ kind: 'sqlite', path: join(dir, 'db.sqlite') });
    await migrateToLatest(db);
    const ledger = createLedger(db, 'org_test');
    // 20 days of one record an hour: 10 days older than a 10-day retention, 10 newer.
    await Promise.all(
      Array.from({ length: 480 }, (_, i) => ledger.append(record(i, NOW - i * 3_600_000 - 1))),
    );
    await ledger.close();
    logs.length = 0;
  });
  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const count = async () =>
    Number(
      (
        await db.kysely
          .selectFrom('usage_records')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('prunes at start, logs the rows it deleted and keeps the newer ones', async () => {
    const cutoff = retentionCutoff(NOW, 10);
    const older = Array.from({ length: 480 }, (_, i) => NOW - i * 3_600_000 - 1).filter(
      (at) => at < cutoff,
    ).length;
    expect(older).toBeGreaterThan(200);
    const job = startRetentionJob({ db, retentionDays: 10, logger, now: () => NOW });
    const result = await job.run();
    await job.close();
    expect(result).toMatchObject({ cutoff, deleted: older, complete: true });
    expect(await count()).toBe(480 - older);
    expect(await rawHorizon(db)).toBe(cutoff);
    expect(logs.at(-1)?.message).toBe(`usage retention: deleted ${older} raw usage rows older than 10 days`);
    expect(logs.at(-1)?.fields).toMatchObject({ deleted: older, before: new Date(cutoff).toISOString() });
    // The rollups still hold every request.
    const rolled = await db.kysely
      .selectFrom('usage_rollups')
      .select((eb) => eb.fn.sum<number>('requests').as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(rolled.n)).toBe(480);
  });

  it('deletes nothing while no run has happened, and nothing newer than the retention (controls)', async () => {
    const job = startRetentionJob({ db, retentionDays: 30, logger, now: () => NOW, intervalMs: 3_600_000 });
    await job.close();
    // A 30-day retention keeps all 20 days, whether the first run got to go or not.
    expect(await count()).toBe(480);
    const again = startRetentionJob({ db, retentionDays: 30, logger, now: () => NOW });
    expect(await again.run()).toMatchObject({ deleted: 0 });
    await again.close();
    expect(await count()).toBe(480);
    expect(NOW - 20 * DAY).toBeLessThan(retentionCutoff(NOW, 10));
  });
});
