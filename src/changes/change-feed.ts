// The change feed: every state change that a running server caches appends one row in the same
// transaction, and servers poll the feed to invalidate what they hold (≤ 1 s staleness).
import type { Tx } from '../db/tx.js';

export type ChangeKind = 'key' | 'user' | 'team' | 'credential' | 'budget' | 'org';

export async function recordChange(tx: Tx, kind: ChangeKind, targetId: string, at: number): Promise<void> {
  await tx.insertInto('change_log').values({ kind, target_id: targetId, at }).execute();
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
