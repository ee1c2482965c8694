// The change feed: every state change that a running server caches appends one row in the same
// transaction, and servers poll the feed to invalidate what they hold (≤ 1 s staleness).
import { sql } from 'kysely';
import type { Dialect } from '../db/connect.js';
import type { Tx } from '../db/tx.js';

export type ChangeKind = 'key' | 'user' | 'team' | 'credential' | 'budget' | 'org';

/** Arbitrary, fixed: the transaction lock that orders feed rows on PostgreSQL (see recordChanges). */
const FEED_LOCK = 0x746f6c6c; // "toll"
const FEED_SLICE = 1000;

/**
 * Appends feed rows; call last in the write transaction. Readers keep only the highest seq they
 * have read, so a row must never become visible after a row with a higher seq. SQLite writers are
 * serialised (BEGIN IMMEDIATE); on PostgreSQL two transactions could take seqs 10 and 11 and commit
 * 11 first, and a reader in between would skip 10 for good (a revocation never applied). The
 * transaction lock taken just before the insert is held until commit, so seqs are taken in commit
 * order; it is held only for the insert and the commit.
 */
export async function recordChanges(
  tx: Tx,
  dialect: Dialect,
  rows: ReadonlyArray<{ kind: ChangeKind; target_id: string; at: number }>,
): Promise<void> {
  if (rows.length === 0) return;
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(${FEED_LOCK})`.execute(tx);
  // In slices: a bulk change (a team's thousands of keys) stays under PostgreSQL's 65,535 parameters.
  for (let i = 0; i < rows.length; i += FEED_SLICE)
    await tx
      .insertInto('change_log')
      .values(rows.slice(i, i + FEED_SLICE))
      .execute();
}

/** Changes after `afterSeq`, oldest first, at most `limit`. */
export async function changesSince(tx: Tx, afterSeq: number, limit = 1000) {
  return tx
    .selectFrom('change_log')
    .select(['seq', 'kind', 'target_id'])
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(limit)
    .execute();
}

export async function latestChangeSeq(tx: Tx): Promise<number> {
  const row = await tx
    .selectFrom('change_log')
    .select((eb) => eb.fn.max('seq').as('seq'))
    .executeTakeFirst();
  return Number(row?.seq ?? 0);
}
