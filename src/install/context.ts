// What every service needs: the installation, a clock and the actor on whose behalf it acts.
import { appendAudit, headOf } from '../audit/audit.repo.js';
import { type ChangeKind, recordChange } from '../changes/change-feed.js';
import type { AuditRow } from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import { writeTransaction } from '../db/tx.js';
import type { Clock } from '../lib/clock.js';
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
 * committed, the new chain head goes to the audit witness (if configured): never a head that rolled back.
 */
export async function change<T>(
  ctx: ServiceContext,
  by: Actor,
  fn: (unit: ChangeUnit) => Promise<T>,
): Promise<T> {
  const { db, anchorKey, witness } = ctx.installation;
  const last: { head: AuditRow | null } = { head: null };
  const result = await writeTransaction(db, (tx) => {
    const now = ctx.clock();
    last.head = null;
    return fn({
      tx,
      now,
      audit: async (action, targetType, targetId, details) => {
        last.head = await appendAudit(tx, db.dialect, anchorKey, {
          actor: by.actor,
          action,
          targetType,
          targetId,
          details: details ?? {},
          at: now,
        });
      },
      changed: (kind, targetId) => recordChange(tx, kind, targetId, now),
    });
  });
  if (witness && last.head) await witness.record(headOf(last.head, anchorKey));
  return result;
}
