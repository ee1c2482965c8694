// Usage retention (`usage.retention_days`): raw usage rows older than the retention are deleted; the
// 15-minute rollups and the daily table, which every report reads, are kept. Only whole 15-minute
// buckets go (the cutoff is a bucket start), and the raw horizon — the bucket start before which raw
// rows may be gone — is committed in meta BEFORE any row below it is deleted: a report reads it in the
// same statement as the rows (usage.repo.ts), so a range edge falling in a quarter hour below the
// horizon is answered from that quarter hour's rollup, whole, never from half-deleted raw rows.
//
// Deletion runs in bounded batches (each its own short transaction, found through the time key: the
// clustered (at, id) key on SQLite, the `usage_at` index on PostgreSQL) with a pause between them, so
// neither the event loop nor the write lock is held for long and the ledger's commits interleave. A
// crash between batches leaves fewer rows deleted and the horizon already advanced: harmless, the next
// run goes on. The cutoff is at least one day old (retention_days ≥ 1), far past any request still in
// flight (upstream timeouts are minutes), so the ledger never writes below it.
import type { Db } from '../db/connect.js';
import { writeTransaction } from '../db/tx.js';
import { readMeta, writeMeta } from '../install/meta.repo.js';
import { AppError } from '../lib/errors.js';
import { bucketOf, ROLLUP_BUCKET_MS } from './rollup-batch.js';

/** The meta key holding the raw horizon (epoch ms, a bucket start); absent = nothing pruned yet. */
export const RAW_HORIZON_META = 'usage_raw_horizon';

const DAY_MS = 86_400_000;

/** Raw rows older than `days` whole days before `now` may go: the bucket start at or before that instant. */
export function retentionCutoff(now: number, days: number): number {
  if (!Number.isSafeInteger(days) || days < 1)
    throw new AppError('invalid_config', 'usage.retention_days must be a whole number of days, at least 1');
  return bucketOf(now - days * DAY_MS);
}

/** The raw horizon stored in meta (0 when nothing was ever pruned). */
export async function rawHorizon(db: Db): Promise<number> {
  const value = await readMeta(db, RAW_HORIZON_META);
  return value === null ? 0 : Number(value);
}

export interface PruneOptions {
  /** Rows per delete transaction, about (rows sharing the batch's last millisecond go with it). */
  readonly batchRows?: number;
  /** Pause between batches, so other writers (the ledger) and the event loop get their turn. */
  readonly pauseMs?: number;
  /** Stops between batches (server shutdown). */
  readonly signal?: AbortSignal;
  /** Called after each committed batch with the rows it deleted. */
  readonly onBatch?: (deleted: number) => void;
}

export interface PruneResult {
  readonly cutoff: number;
  readonly deleted: number;
  /** False when stopped by the signal before every row below the cutoff was gone. */
  readonly complete: boolean;
}

/** Deletes every raw usage row with `at` < `cutoff` (a bucket start), batch by batch. */
export async function pruneRawUsage(
  db: Db,
  cutoff: number,
  options: PruneOptions = {},
): Promise<PruneResult> {
  if (!Number.isSafeInteger(cutoff) || cutoff % ROLLUP_BUCKET_MS !== 0)
    throw new AppError('internal', 'a usage prune cutoff must be a 15-minute bucket start');
  const batchRows = options.batchRows ?? (db.dialect === 'sqlite' ? 1000 : 5000);
  const pauseMs = options.pauseMs ?? 5;
  await advanceHorizon(db, cutoff);
  const batch = db.sqlite ? sqliteBatch(db.sqlite) : postgresBatch(db);
  let low = Number.MIN_SAFE_INTEGER;
  let deleted = 0;
  for (;;) {
    if (options.signal?.aborted) return { cutoff, deleted, complete: false };
    const step = await batch(low, cutoff, batchRows);
    deleted += step.deleted;
    if (step.deleted > 0) options.onBatch?.(step.deleted);
    if (step.next === null) return { cutoff, deleted, complete: true };
    low = step.next;
    await new Promise<void>((resolve) => setTimeout(resolve, pauseMs));
  }
}

/** Raises the stored horizon to `cutoff` (never lowers it: rows below an older horizon may be gone). */
async function advanceHorizon(db: Db, cutoff: number): Promise<void> {
  await writeTransaction(db, async (tx) => {
    const row = await tx
      .selectFrom('meta')
      .select('value')
      .where('key', '=', RAW_HORIZON_META)
      .executeTakeFirst();
    if (row !== undefined && Number(row.value) >= cutoff) return;
    await writeMeta(tx, RAW_HORIZON_META, String(cutoff));
  });
}

/** One batch: the rows from `low` up to (and including) the millisecond of the n-th row below `cutoff`. */
type Batch = (low: number, cutoff: number, n: number) => Promise<{ deleted: number; next: number | null }>;

const NTH = 'select at from usage_records where at >= ? and at < ? order by at limit 1 offset ?';

function sqliteBatch(sqlite: NonNullable<Db['sqlite']>): Batch {
  const nth = sqlite.prepare<[number, number, number], { at: number }>(NTH);
  const upTo = sqlite.prepare('delete from usage_records where at >= ? and at <= ?');
  const rest = sqlite.prepare('delete from usage_records where at >= ? and at < ?');
  return async (low, cutoff, n) => {
    // The handle is shared with the server's other writers: wait until none of theirs is open.
    while (sqlite.inTransaction) await new Promise<void>((resolve) => setImmediate(resolve));
    return sqlite
      .transaction(() => {
        const edge = nth.get(low, cutoff, n - 1);
        if (edge === undefined) return { deleted: rest.run(low, cutoff).changes, next: null };
        return { deleted: upTo.run(low, edge.at).changes, next: edge.at + 1 };
      })
      .immediate();
  };
}

function postgresBatch(db: Db): Batch {
  return (low, cutoff, n) =>
    writeTransaction(db, async (tx) => {
      const edge = await tx
        .selectFrom('usage_records')
        .select('at')
        .where('at', '>=', low)
        .where('at', '<', cutoff)
        .orderBy('at')
        .limit(1)
        .offset(n - 1)
        .executeTakeFirst();
      const query = tx.deleteFrom('usage_records').where('at', '>=', low);
      const done = await (edge === undefined
        ? query.where('at', '<', cutoff)
        : query.where('at', '<=', Number(edge.at))
      ).executeTakeFirst();
      return {
        deleted: Number(done.numDeletedRows),
        next: edge === undefined ? null : Number(edge.at) + 1,
      };
    });
}
