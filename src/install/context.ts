// What every service needs: the installation, a clock and the actor on whose behalf it acts.
import { appendAudit, headOf } from '../audit/audit.repo.js';
import { type ChangeKind, recordChanges } from '../changes/change-feed.js';
import type { AuditRow } from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import { writeTransaction } from '../db/tx.js';
import type { Clock } from '../lib/clock.js';
import { AppError, isAppError } from '../lib/errors.js';
import type { Installation } from './installation.js';

export interface ServiceContext {
  readonly installation: Installation;
  readonly clock: Clock;
}

export interface Actor {
  /** Who acts, e.g. `cli:alice` or `admin-token`; recorded in the audit log. */
  readonly actor: string;
}

export type AuditDetails = Record<string, string | number | boolean | null>;

export interface ChangeUnit {
  readonly tx: Tx;
  readonly now: number;
  audit(action: string, targetType: string, targetId: string, details?: AuditDetails): Promise<void>;
  changed(kind: ChangeKind, targetId: string): Promise<void>;
}

/**
 * Runs one state change in a write transaction together with its audit entry and its change-feed
 * rows, so the audit log and running servers never miss a change that committed. Once it has
 * committed, the new chain head goes to the audit witness (if configured): never a head that rolled back;
 * and the other instances are told to read the feed (never from inside the transaction, which could
 * still roll back or not yet be visible to them).
 */
export async function change<T>(
  ctx: ServiceContext,
  by: Actor,
  fn: (unit: ChangeUnit) => Promise<T>,
): Promise<T> {
  const { db, anchorKey, witness } = ctx.installation;
  const last: { head: AuditRow | null } = { head: null };
  let changed = 0;
  const result = await writeTransaction(db, async (tx) => {
    const now = ctx.clock();
    last.head = null;
    // Feed rows are written last, in one statement (see recordChanges for why on PostgreSQL).
    const rows: Array<{ kind: ChangeKind; target_id: string; at: number }> = [];
    const value = await fn({
      tx,
      now,
      audit: async (action, targetType, targetId, details) => {
        last.head = await appendAudit(
          tx,
          db.dialect,
          anchorKey,
          {
            actor: by.actor,
            action,
            targetType,
            targetId,
            details: details ?? {},
            at: now,
          },
          { keys: ctx.installation.keys() },
        );
      },
      changed: async (kind, targetId) => {
        rows.push({ kind, target_id: targetId, at: now });
      },
    });
    await recordChanges(tx, db.dialect, rows);
    changed = rows.length;
    return value;
  }).catch(async (error: unknown) => {
    // The anchor no longer verifies under this process's key: another process rotated the master
    // key. The change rolled back (it may have sealed a secret under the previous key); this process
    // learns the new key, and the caller runs the change again.
    if (isAppError(error) && error.code === 'audit_broken' && (await ctx.installation.refreshKeys())) {
      throw new AppError(
        'conflict',
        'the master key was rotated while this change ran; nothing was changed, run it again',
        {},
        { cause: error },
      );
    }
    throw error;
  });
  if (witness && last.head) await witness.record(headOf(last.head, anchorKey));
  if (changed > 0) ctx.installation.changes?.publish();
  return result;
}
