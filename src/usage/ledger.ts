// The usage ledger writer. Records are group-committed: every record appended while a commit runs
// (or during the same event-loop turn) goes into the next transaction together — no timers. Each
// append resolves only when its transaction has committed, so callers can hold the last byte of a
// response until its record is durable (SQLite WAL: it survives kill -9 of the process). SQLite writes
// through prepared statements (sqlite-batch), PostgreSQL through one constant statement (pg-batch).
import { CompiledQuery } from 'kysely';
import type { Db } from '../db/connect.js';
import type { UsageRecordTable } from '../db/schema.js';
import { AppError } from '../lib/errors.js';
import { createLastUseTracker } from './last-use.js';
import { buildBatch, type SpendDelta } from './ledger-batch.js';
import { LEDGER_STATEMENT, ledgerParameters } from './pg-batch.js';
import { dayOfBucket } from './rollup-batch.js';
import { createSqliteBatchWriter } from './sqlite-batch.js';

export type UsageRecord = UsageRecordTable;

interface Pending {
  record: UsageRecord;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export interface LedgerOptions {
  /** Records waiting for a commit, at most; beyond it the gateway refuses new requests. */
  readonly maxQueue?: number;
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
      // PostgreSQL: one constant statement, prepared once per connection (its parse and plan cost more
      // than the write of a few rows: ~1 ms of the server's CPU per commit, measured).
      else if (db.prepared)
        await db.prepared('tollgate_ledger_write', LEDGER_STATEMENT, ledgerParameters(batch));
      else await db.kysely.executeQuery(CompiledQuery.raw(LEDGER_STATEMENT, ledgerParameters(batch)));
      committed += pending.length;
      const ms = performance.now() - began;
      for (const p of pending) lastUse.note(p.record.key_id, p.record.credential_id, p.record.at);
      for (const p of pending) p.resolve();
      options.onCommit?.({ ms, spend: batch.spend });
    } catch (error) {
      for (const p of pending) p.reject(error);
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
