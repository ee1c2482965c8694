// The usage ledger writer. Records are group-committed: every record appended while a commit runs
// (or during the same event-loop turn) goes into the next transaction together — no timers. Each
// append resolves only when its transaction has committed, so callers can hold the last byte of a
// response until its record is durable (SQLite WAL: it survives kill -9 of the process).
import { sql } from 'kysely';
import type { Db } from '../db/connect.js';
import type { UsageRecordTable } from '../db/schema.js';
import { type Tx, writeTransaction } from '../db/tx.js';
import { AppError } from '../lib/errors.js';
import { createLastUseTracker } from './last-use.js';
import { buildBatch, type LedgerBatch, type SpendDelta } from './ledger-batch.js';
import { type DailyDelta, dayOfBucket, type RollupDelta } from './rollup-batch.js';
import { createSqliteBatchWriter, ROLLUP_SUMS } from './sqlite-batch.js';

export type UsageRecord = UsageRecordTable;

interface Pending {
  record: UsageRecord;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export interface LedgerOptions {
  /** Records waiting for a commit, at most; beyond it the gateway refuses new requests. */
  readonly maxQueue?: number;
  /** Rows per INSERT statement. */
  readonly chunk?: number;
  /**
   * The reporting timezone the daily usage table is cut in (`usage.timezone`; serve has already made
   * the table agree with it, see ensureDailyRollups). Default UTC.
   */
  readonly timeZone?: string;
  /**
   * Told after each commit how long its transaction took (ms) and which
   * scopes it charged (metrics time commits; alerts check budgets off the request path). Called once
   * per batch, never per record; must not throw or block.
   */
  readonly onCommit?: (commit: LedgerCommit) => void;
}

/** One committed ledger transaction, as `onCommit` is told of it. */
export interface LedgerCommit {
  readonly ms: number;
  readonly spend: readonly SpendDelta[];
}

export function createLedger(db: Db, orgId: string, options: LedgerOptions = {}) {
  const maxQueue = options.maxQueue ?? 50_000;
  const chunk = options.chunk ?? 400;
  const dayOf = dayOfBucket(options.timeZone ?? 'UTC');
  let queue: Pending[] = [];
  let scheduled = false;
  let flushing: Promise<void> | null = null;
  let committed = 0;
  const fast = db.sqlite ? createSqliteBatchWriter(db.sqlite) : null;
  const lastUse = createLastUseTracker(db);

  /** Whether another record can be accepted now (checked before a request goes upstream). */
  function hasCapacity(): boolean {
    return queue.length < maxQueue;
  }

  /** Queues a record; resolves once it is durable. */
  function append(record: UsageRecord): Promise<void> {
    if (queue.length >= maxQueue)
      return Promise.reject(new AppError('internal', 'usage ledger queue is full'));
    return new Promise<void>((resolve, reject) => {
      queue.push({ record, resolve, reject });
      schedule();
    });
  }

  function schedule(): void {
    if (scheduled || flushing) return;
    scheduled = true;
    // setImmediate runs after this turn's I/O callbacks: everything appended in the turn joins the batch.
    setImmediate(() => {
      scheduled = false;
      flushing = flush().finally(() => {
        flushing = null;
        if (queue.length > 0) schedule();
      });
    });
  }

  async function flush(): Promise<void> {
    if (fast && !fast.ready()) {
      // Another transaction (an admin change) holds the shared SQLite handle: try next turn.
      await new Promise<void>((resolve) => setImmediate(resolve));
      return;
    }
    const pending = queue;
    queue = [];
    if (pending.length === 0) return;
    const began = performance.now();
    try {
      const batch = buildBatch(
        pending.map((p) => p.record),
        orgId,
        dayOf,
      );
      if (fast) fast.write(batch);
      else if (fitsOneStatement(batch)) await writeOneStatement(batch);
      else await writeTransaction(db, (tx) => writeBatch(tx, batch));
      committed += pending.length;
      const ms = performance.now() - began;
      for (const p of pending) lastUse.note(p.record.key_id, p.record.credential_id, p.record.at);
      for (const p of pending) p.resolve();
      options.onCommit?.({ ms, spend: batch.spend });
    } catch (error) {
      for (const p of pending) p.reject(error);
    }
  }

  function fitsOneStatement(batch: LedgerBatch): boolean {
    return (
      batch.records.length <= chunk &&
      batch.spend.length <= chunk &&
      batch.rollups.length > 0 &&
      batch.rollups.length <= chunk &&
      batch.daily.length > 0 &&
      batch.daily.length <= chunk
    );
  }

  /**
   * PostgreSQL: a batch that fits one statement per table is written as ONE statement — data-modifying
   * CTEs — so a commit is one round trip (an implicit transaction: all or nothing) instead of BEGIN,
   * four INSERTs and COMMIT. Same rows, same upserts, same lock order as writeBatch (records, rollups,
   * daily, spend; rows sorted within a table), so instances on one database never deadlock.
   */
  async function writeOneStatement(batch: LedgerBatch): Promise<void> {
    const rollups = [...batch.rollups].sort(compareRollupKeys);
    const daily = [...batch.daily].sort(compareDailyKeys);
    const q = db.kysely
      .with('r', (w) => w.insertInto('usage_records').values(batch.records))
      .with('u', (w) =>
        w
          .insertInto('usage_rollups')
          .values(rollups)
          .onConflict((oc) =>
            oc
              .columns(['bucket', 'key_id', 'model', 'credential_id', 'user_id', 'team_id'])
              .doUpdateSet((eb) =>
                Object.fromEntries(
                  ROLLUP_SUMS.map((c) => [c, eb(`usage_rollups.${c}`, '+', eb.ref(`excluded.${c}`))]),
                ),
              ),
          ),
      )
      .with('d', (w) =>
        w
          .insertInto('usage_daily')
          .values(daily)
          .onConflict((oc) =>
            oc
              .columns(['day', 'team_id', 'user_id', 'key_id', 'model', 'credential_id'])
              .doUpdateSet((eb) =>
                Object.fromEntries(
                  ROLLUP_SUMS.map((c) => [c, eb(`usage_daily.${c}`, '+', eb.ref(`excluded.${c}`))]),
                ),
              ),
          ),
      );
    const one = sql<number>`1`.as('one');
    if (batch.spend.length === 0) {
      await q.selectNoFrom(one).execute();
      return;
    }
    await q
      .with('s', (w) =>
        w
          .insertInto('spend')
          .values([...batch.spend].sort(compareSpendKeys))
          .onConflict((oc) =>
            oc.columns(['scope_type', 'scope_id', 'period', 'period_start']).doUpdateSet((eb) => ({
              spent_micro: eb('spend.spent_micro', '+', eb.ref('excluded.spent_micro')),
            })),
          ),
      )
      .selectNoFrom(one)
      .execute();
  }

  async function writeBatch(tx: Tx, batch: LedgerBatch): Promise<void> {
    for (let i = 0; i < batch.records.length; i += chunk) {
      await tx
        .insertInto('usage_records')
        .values(batch.records.slice(i, i + chunk))
        .execute();
    }
    // Sorted by key, so two instances upserting the same rows take their locks in the same order.
    const rollups = [...batch.rollups].sort(compareRollupKeys);
    for (let i = 0; i < rollups.length; i += chunk) {
      await tx
        .insertInto('usage_rollups')
        .values(rollups.slice(i, i + chunk))
        .onConflict((oc) =>
          oc
            .columns(['bucket', 'key_id', 'model', 'credential_id', 'user_id', 'team_id'])
            .doUpdateSet((eb) =>
              Object.fromEntries(
                ROLLUP_SUMS.map((c) => [c, eb(`usage_rollups.${c}`, '+', eb.ref(`excluded.${c}`))]),
              ),
            ),
        )
        .execute();
    }
    const daily = [...batch.daily].sort(compareDailyKeys);
    for (let i = 0; i < daily.length; i += chunk) {
      await tx
        .insertInto('usage_daily')
        .values(daily.slice(i, i + chunk))
        .onConflict((oc) =>
          oc
            .columns(['day', 'team_id', 'user_id', 'key_id', 'model', 'credential_id'])
            .doUpdateSet((eb) =>
              Object.fromEntries(
                ROLLUP_SUMS.map((c) => [c, eb(`usage_daily.${c}`, '+', eb.ref(`excluded.${c}`))]),
              ),
            ),
        )
        .execute();
    }
    // Spend last, in both write paths: every instance takes its row locks table by table in one order.
    const spend = [...batch.spend].sort(compareSpendKeys);
    for (let i = 0; i < spend.length; i += chunk) {
      await tx
        .insertInto('spend')
        .values(spend.slice(i, i + chunk))
        .onConflict((oc) =>
          oc.columns(['scope_type', 'scope_id', 'period', 'period_start']).doUpdateSet((eb) => ({
            spent_micro: eb('spend.spent_micro', '+', eb.ref('excluded.spent_micro')),
          })),
        )
        .execute();
    }
  }

  /** Waits until everything appended so far is committed. */
  async function drain(): Promise<void> {
    while (queue.length > 0 || flushing || scheduled) {
      if (flushing) await flushing;
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Commits everything pending and the last-use times; call before closing the database. */
  async function close(): Promise<void> {
    await drain();
    await lastUse.close();
  }

  return {
    append,
    hasCapacity,
    drain,
    close,
    flushLastUse: lastUse.flush,
    stats: () => ({ queued: queue.length, committed }),
  };
}

export type Ledger = ReturnType<typeof createLedger>;

function compareRollupKeys(a: RollupDelta, b: RollupDelta): number {
  if (a.bucket !== b.bucket) return a.bucket - b.bucket;
  return compareIdColumns(a, b, ROLLUP_ID_ORDER);
}

/** Spend rows in their primary key's order (scope, id, period, start): one lock order for every instance. */
function compareSpendKeys(a: SpendDelta, b: SpendDelta): number {
  if (a.scope_type !== b.scope_type) return a.scope_type < b.scope_type ? -1 : 1;
  if (a.scope_id !== b.scope_id) return a.scope_id < b.scope_id ? -1 : 1;
  if (a.period !== b.period) return a.period < b.period ? -1 : 1;
  return a.period_start - b.period_start;
}

function compareDailyKeys(a: DailyDelta, b: DailyDelta): number {
  if (a.day !== b.day) return a.day - b.day;
  return compareIdColumns(a, b, DAILY_ID_ORDER);
}

/** The id columns in each table's primary-key order (usage_daily's is migration 0014's). */
const ROLLUP_ID_ORDER = ['key_id', 'model', 'credential_id', 'user_id', 'team_id'] as const;
const DAILY_ID_ORDER = ['team_id', 'user_id', 'key_id', 'model', 'credential_id'] as const;

function compareIdColumns(
  a: DailyDelta | RollupDelta,
  b: DailyDelta | RollupDelta,
  order: typeof ROLLUP_ID_ORDER | typeof DAILY_ID_ORDER,
): number {
  for (const c of order) {
    if (a[c] !== b[c]) return a[c] < b[c] ? -1 : 1;
  }
  return 0;
}
