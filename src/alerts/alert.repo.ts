// The alerts table: raising an alert (one row per condition, with its audit entry, in the caller's change
// unit), the sender's claim and outcome, and what `status` and the overview read.
import type { AlertDelivery, AlertRow } from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import { type Actor, type ChangeUnit, change, type ServiceContext } from '../install/context.js';
import { newId } from '../lib/ids.js';
import { type NewAlert, webhookBody } from './alert-text.js';

export const ALERTS_ACTOR: Actor = { actor: 'system:alerts' };

/**
 * Records `alert` in this change unit unless its condition already has a row (then nothing happens and
 * false is returned). The audit entry carries the alert's fields, never the webhook URL.
 */
export async function raiseIn(u: ChangeUnit, alert: NewAlert, webhook: boolean): Promise<boolean> {
  const id = newId('alr');
  const delivery: AlertDelivery = webhook ? 'pending' : 'off';
  const result = await u.tx
    .insertInto('alerts')
    .values({
      id,
      condition: alert.condition,
      kind: alert.kind,
      target_type: alert.targetType,
      target_id: alert.targetId,
      raised_at: u.now,
      message: alert.message,
      payload: webhookBody(alert, id, u.now),
      delivery,
      attempts: 0,
      next_attempt_at: webhook ? u.now : null,
      lease_until: null,
      delivered_at: null,
      last_error: null,
    })
    .onConflict((oc) => oc.column('condition').doNothing())
    .executeTakeFirst();
  if (Number(result.numInsertedOrUpdatedRows ?? 0n) === 0) return false;
  await u.audit('alert.raised', alert.targetType, alert.targetId, {
    alert: id,
    kind: alert.kind,
    message: alert.message,
    delivery,
    ...alert.fields,
  });
  return true;
}

/** Conditions among `conditions` that already have an alert. */
export async function existingConditions(db: Tx, conditions: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < conditions.length; i += 500) {
    const rows = await db
      .selectFrom('alerts')
      .select('condition')
      .where('condition', 'in', conditions.slice(i, i + 500))
      .execute();
    for (const r of rows) found.add(r.condition);
  }
  return found;
}

/** Raises the alerts whose conditions have none yet (a few per transaction); returns how many were new. */
export async function raiseAll(
  ctx: ServiceContext,
  alerts: readonly NewAlert[],
  webhook: boolean,
): Promise<number> {
  const known = await existingConditions(
    ctx.installation.db.kysely,
    alerts.map((a) => a.condition),
  );
  const fresh = alerts.filter((a) => !known.has(a.condition));
  let raised = 0;
  for (let i = 0; i < fresh.length; i += 50) {
    raised += await change(ctx, ALERTS_ACTOR, async (u) => {
      let n = 0;
      for (const alert of fresh.slice(i, i + 50)) if (await raiseIn(u, alert, webhook)) n++;
      return n;
    });
  }
  return raised;
}

/** Alerts due for a delivery attempt, oldest first. */
export function dueAlerts(db: Tx, now: number, limit: number) {
  return db
    .selectFrom('alerts')
    .select(['id', 'payload', 'attempts'])
    .where('delivery', '=', 'pending')
    .where('next_attempt_at', '<=', now)
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', now)]))
    .orderBy('next_attempt_at')
    .limit(limit)
    .execute();
}

/** When the next pending alert is due, or null when none is. */
export async function nextDue(db: Tx): Promise<number | null> {
  const row = await db
    .selectFrom('alerts')
    .select((eb) => eb.fn.min('next_attempt_at').as('next'))
    .where('delivery', '=', 'pending')
    .executeTakeFirst();
  return row?.next == null ? null : Number(row.next);
}

/**
 * Claims one alert for an attempt (atomic: of several processes, one wins) and counts the attempt. The
 * claim lapses at `leaseUntil`, so an attempt cut short by a crash is made again after it.
 */
export async function claim(db: Tx, id: string, now: number, leaseUntil: number): Promise<boolean> {
  const result = await db
    .updateTable('alerts')
    .set((eb) => ({ lease_until: leaseUntil, attempts: eb('attempts', '+', 1) }))
    .where('id', '=', id)
    .where('delivery', '=', 'pending')
    .where('next_attempt_at', '<=', now)
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', now)]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export type Outcome =
  | { kind: 'delivered'; at: number }
  | { kind: 'retry'; at: number; error: string }
  | { kind: 'failed'; error: string };

export async function recordOutcome(db: Tx, id: string, outcome: Outcome): Promise<void> {
  const update =
    outcome.kind === 'delivered'
      ? { delivery: 'delivered' as const, delivered_at: outcome.at, next_attempt_at: null, last_error: null }
      : outcome.kind === 'retry'
        ? { delivery: 'pending' as const, next_attempt_at: outcome.at, last_error: outcome.error }
        : { delivery: 'failed' as const, next_attempt_at: null, last_error: outcome.error };
  await db
    .updateTable('alerts')
    .set({ ...update, lease_until: null })
    .where('id', '=', id)
    .execute();
}

export interface AlertView {
  id: string;
  kind: AlertRow['kind'];
  raised_at: string;
  message: string;
  object: { type: string; id: string };
  delivery: AlertDelivery;
  attempts: number;
  delivered_at: string | null;
  next_attempt_at: string | null;
  last_error: string | null;
}

export interface AlertLog {
  /** Whether this process has a webhook configured (alerts are recorded either way). */
  webhook: boolean;
  /** The latest alerts, newest first. */
  recent: AlertView[];
  /** Alerts not delivered yet (pending) or given up on (failed), newest first; at most `limit`. */
  undelivered: AlertView[];
  undelivered_count: number;
}

/** The alert log as `tollgate status` and the overview show it. */
export async function alertLog(db: Tx, webhook: boolean, limit = 10): Promise<AlertLog> {
  const [recent, undelivered, count] = await Promise.all([
    db.selectFrom('alerts').selectAll().orderBy('raised_at', 'desc').orderBy('id').limit(limit).execute(),
    db
      .selectFrom('alerts')
      .selectAll()
      .where('delivery', 'in', ['pending', 'failed'])
      .orderBy('raised_at', 'desc')
      .orderBy('id')
      .limit(limit)
      .execute(),
    db
      .selectFrom('alerts')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('delivery', 'in', ['pending', 'failed'])
      .executeTakeFirst(),
  ]);
  return {
    webhook,
    recent: recent.map(alertView),
    undelivered: undelivered.map(alertView),
    undelivered_count: Number(count?.n ?? 0),
  };
}

function alertView(r: AlertRow): AlertView {
  const iso = (at: number | null) => (at === null ? null : new Date(Number(at)).toISOString());
  return {
    id: r.id,
    kind: r.kind,
    raised_at: new Date(Number(r.raised_at)).toISOString(),
    message: r.message,
    object: { type: r.target_type, id: r.target_id },
    delivery: r.delivery,
    attempts: Number(r.attempts),
    delivered_at: iso(r.delivered_at),
    next_attempt_at: r.delivery === 'pending' ? iso(r.next_attempt_at) : null,
    last_error: r.last_error,
  };
}
