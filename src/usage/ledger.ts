// The usage ledger writer. Records are group-committed: every record appended while a commit runs
// (or during the same event-loop turn) goes into the next transaction together — no timers. Each
// append resolves only when its transaction has committed, so callers can hold the last byte of a
// response until its record is durable (SQLite WAL: it survives kill -9 of the process).
import { PERIODS, periodStart } from '../budgets/periods.js';
import type { Db } from '../db/connect.js';
import type { BudgetScope, UsageRecordTable } from '../db/schema.js';
import { type Tx, writeTransaction } from '../db/tx.js';
import { AppError } from '../lib/errors.js';

export type UsageRecord = UsageRecordTable;

interface Pending {
  record: UsageRecord;
  orgId: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export interface LedgerOptions {
  /** Records waiting for a commit, at most; beyond it the gateway refuses new requests. */
  readonly maxQueue?: number;
  /** Rows per INSERT statement. */
  readonly chunk?: number;
}

export function createLedger(db: Db, orgId: string, options: LedgerOptions = {}) {
  const maxQueue = options.maxQueue ?? 50_000;
  const chunk = options.chunk ?? 400;
  let queue: Pending[] = [];
  let scheduled = false;
  let flushing: Promise<void> | null = null;
  let committed = 0;

  /** Whether another record can be accepted now (checked before a request goes upstream). */
  function hasCapacity(): boolean {
    return queue.length < maxQueue;
  }

  /** Queues a record; resolves once it is durable. */
  function append(record: UsageRecord): Promise<void> {
    if (queue.length >= maxQueue)
      return Promise.reject(new AppError('internal', 'usage ledger queue is full'));
    return new Promise<void>((resolve, reject) => {
      queue.push({ record, orgId, resolve, reject });
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
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    try {
      await writeTransaction(db, (tx) => writeBatch(tx, batch));
      committed += batch.length;
      for (const p of batch) p.resolve();
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }

  async function writeBatch(tx: Tx, batch: Pending[]): Promise<void> {
    for (let i = 0; i < batch.length; i += chunk) {
      await tx
        .insertInto('usage_records')
        .values(batch.slice(i, i + chunk).map((p) => p.record))
        .execute();
    }
    const spend = aggregateSpend(batch);
    const rows = [...spend.values()];
    for (let i = 0; i < rows.length; i += chunk) {
      await tx
        .insertInto('spend')
        .values(rows.slice(i, i + chunk))
        .onConflict((oc) =>
          oc.columns(['scope_type', 'scope_id', 'period', 'period_start']).doUpdateSet((eb) => ({
            spent_micro: eb('spend.spent_micro', '+', eb.ref('excluded.spent_micro')),
          })),
        )
        .execute();
    }
    const lastUse = new Map<string, number>();
    for (const p of batch)
      lastUse.set(p.record.key_id, Math.max(lastUse.get(p.record.key_id) ?? 0, p.record.at));
    const latest = Math.max(...lastUse.values());
    await tx
      .updateTable('gateway_keys')
      .set({ last_used_at: latest })
      .where('id', 'in', [...lastUse.keys()])
      .execute();
    const creds = [
      ...new Set(batch.map((p) => p.record.credential_id).filter((c): c is string => c !== null)),
    ];
    if (creds.length > 0)
      await tx.updateTable('credentials').set({ last_used_at: latest }).where('id', 'in', creds).execute();
  }

  /** Waits until everything appended so far is committed. */
  async function drain(): Promise<void> {
    while (queue.length > 0 || flushing || scheduled) {
      if (flushing) await flushing;
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  return { append, hasCapacity, drain, stats: () => ({ queued: queue.length, committed }) };
}

/** Sums the batch's costs per scope, period and period start (one upsert per counter per batch). */
function aggregateSpend(batch: readonly Pending[]) {
  const out = new Map<
    string,
    {
      scope_type: BudgetScope;
      scope_id: string;
      period: (typeof PERIODS)[number];
      period_start: number;
      spent_micro: number;
    }
  >();
  for (const { record, orgId } of batch) {
    if (record.cost_micro === 0) continue;
    const scopes: Array<[BudgetScope, string | null]> = [
      ['key', record.key_id],
      ['user', record.user_id],
      ['team', record.team_id],
      ['org', orgId],
    ];
    for (const [scope, id] of scopes) {
      if (id === null) continue;
      for (const period of PERIODS) {
        const start = periodStart(period, record.at);
        const key = `${scope}|${id}|${period}|${start}`;
        const row = out.get(key);
        if (row) row.spent_micro += record.cost_micro;
        else
          out.set(key, {
            scope_type: scope,
            scope_id: id,
            period,
            period_start: start,
            spent_micro: record.cost_micro,
          });
      }
    }
  }
  return out;
}

export type Ledger = ReturnType<typeof createLedger>;
