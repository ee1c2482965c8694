// Admissions of one gateway key that reach the shared stores in the same event-loop turn go to Redis
// in one script (shared-batch-script.ts) instead of one each. Under load many requests of a key arrive
// together, and each script read and wrote the same windows, slots and budget counters again: batched,
// they are read once and charged once with the sums. Each request is still admitted or refused exactly
// as if its own script had run alone, in the order the requests reached admission (a test checks the
// two against each other); a lone request takes the one-request script, as before.
//
// The batch is sent in the turn's check phase (setImmediate), where the scripts of the turn were sent
// before too (redis/script.ts holds a turn's writes until then): batching adds no wait. The turn's
// batches — each key's admissions and the settlements — leave in one write (sendInCheckPhase).
import type { Reservation, ScopeLimits } from '../budgets/budget-book.js';
import { periodStart } from '../budgets/periods.js';
import { type RedisBudgetBook, type SettleStep, UNREACHABLE } from '../budgets/redis-budget-book.js';
import { type RateLimits, type Ticket, UNAVAILABLE } from '../ratelimit/rate-limiter.js';
import type { FinishStep, RedisRateLimiter, RequestStep, TokensStep } from '../ratelimit/redis-limiter.js';
import { RedisTimeoutError } from '../redis/connect.js';
import { script, sendInCheckPhase } from '../redis/script.js';
import { ADMIT_BATCH, BATCH_MAX, SETTLE_BATCH } from './shared-batch-script.js';
import type { SharedAdmission } from './shared-steps.js';

/** One admission waiting for its turn's batch. */
export interface Pending {
  readonly ticket: Ticket;
  readonly limits: RateLimits;
  readonly now: number;
  readonly scopes: readonly ScopeLimits[];
  readonly worst: number;
  readonly request: RequestStep;
  /** null: the key has no token limits. */
  readonly tokens: TokensStep | null;
}

interface Queued extends Pending {
  resolve(answer: SharedAdmission): void;
  reject(error: unknown): void;
}

const BATCH = script(ADMIT_BATCH);
const SETTLEMENTS = script(SETTLE_BATCH);
const NO_FINISH = ['', '', '', '', ''] as const;

/** The scripts' replies in one batch: one reply per request, or {'X'} (go one by one). */
type BatchReply = ['X'] | (string | number)[][];

/**
 * `one` admits a request with its own script (the path for a lone request, and for a batch that met
 * anything but a plain check).
 */
export function createAdmissionBatcher(
  limiter: RedisRateLimiter,
  book: RedisBudgetBook,
  one: (p: Pending) => Promise<SharedAdmission>,
) {
  let queue: Queued[] = [];

  function admit(p: Pending): Promise<SharedAdmission> {
    return new Promise<SharedAdmission>((resolve, reject) => {
      if (queue.length === 0) sendInCheckPhase(flush);
      // Field by field: a spread of `p` here took ~4 µs per request under load (V8's generic copy).
      queue.push({
        ticket: p.ticket,
        limits: p.limits,
        now: p.now,
        scopes: p.scopes,
        worst: p.worst,
        request: p.request,
        tokens: p.tokens,
        resolve,
        reject,
      });
    });
  }

  function flush(): void {
    const list = queue;
    queue = [];
    for (const run of runs(list)) {
      if (run.length === 1) {
        const q = run[0] as Queued;
        one(q).then(q.resolve, q.reject);
      } else {
        batch(run).catch((error: unknown) => {
          for (const q of run) q.reject(error);
        });
      }
    }
  }

  async function batch(run: readonly Queued[]): Promise<void> {
    const first = run[0] as Queued;
    const budget = book.batch(first.scopes, first.now);
    const [time, rpm, concurrency, , slotTtl, exactMax] = first.request.args;
    const lanes = first.tokens;
    const args: (string | number)[] = [
      run.length,
      time ?? '',
      rpm ?? '',
      concurrency ?? '',
      slotTtl ?? '',
      exactMax ?? '',
      lanes?.args[1] ?? '',
      lanes?.args[2] ?? '',
      ...budget.args,
    ];
    for (const q of run) {
      args.push(q.request.args[3] ?? '', q.tokens?.args[3] ?? 0, q.tokens?.args[4] ?? 0, q.worst);
    }
    const keys = [...first.request.keys, ...(lanes?.keys ?? ['', '']), ...budget.keys];
    let reply: BatchReply;
    try {
      reply = (await budget.run(BATCH, keys, args)) as BatchReply;
    } catch (error) {
      // Sent, but answered too late: slots may be taken (each refusal's finish frees its own) and the
      // group reserved (released after it on this connection).
      if (error instanceof RedisTimeoutError) {
        for (const q of run) limiter.slotMaybeTaken(q.ticket);
        budget.lost();
      }
      budget.unavailable(error);
      for (const q of run) q.resolve(rateLimited(q) ? UNAVAILABLE : UNREACHABLE);
      return;
    }
    if (reply[0] === 'X') {
      for (const q of run) one(q).then(q.resolve, q.reject);
      return;
    }
    const replies = reply as (string | number)[][];
    const worsts: number[] = [];
    for (let i = 0; i < run.length; i++) {
      if (replies[i]?.[0] === 'OK') worsts.push((run[i] as Queued).worst);
    }
    const reservations: Reservation[] = budget.admitted(worsts);
    let next = 0;
    for (let i = 0; i < run.length; i++) {
      const q = run[i] as Queued;
      const r = replies[i] ?? [];
      const kind = r[0];
      if (kind === 'OK') {
        const remaining = Number(r[1]);
        q.tokens?.charged(Number(r[2]));
        q.resolve({
          ok: true,
          reservation: reservations[next++] as Reservation,
          remainingMicro: remaining < 0 ? null : remaining,
          headers: q.request.admitted(Number(r[3]), Number(r[4]), Number(r[5]) === 1),
        });
      } else if (kind === 'T') {
        const refusal = r.slice(2).map(Number);
        q.resolve(Number(r[1]) === 2 && q.tokens ? q.tokens.refused(refusal) : q.request.refused(refusal));
      } else if (kind === 'R') {
        q.resolve({ ok: false, refusal: budget.refusal(Number(r[1]), Number(r[2])) });
      } else {
        q.reject(new Error('unexpected reply from the batch admission script'));
      }
    }
  }

  return { admit };
}

/** Whether the key has a rate limit: Redis unreachable then refuses on the rate limits first. */
function rateLimited(p: Pending): boolean {
  return p.limits.rpm !== null || p.limits.concurrency !== null || p.tokens !== null;
}

/**
 * The queue cut into runs that one script can admit: the same key, limits, scopes, time argument and
 * budget periods; in arrival order, at most BATCH_MAX each.
 */
function runs(list: readonly Queued[]): Queued[][] {
  if (list.length === 1) return [list as Queued[]];
  const byKey = new Map<string, Queued[][]>();
  const out: Queued[][] = [];
  for (const q of list) {
    const name = q.request.keys[0] ?? '';
    let open = byKey.get(name);
    if (!open) {
      open = [];
      byKey.set(name, open);
    }
    let into = open.find((r) => r.length < BATCH_MAX && compatible(r[0] as Queued, q));
    if (!into) {
      into = [];
      open.push(into);
      out.push(into);
    }
    into.push(q);
  }
  return out;
}

function compatible(a: Pending, b: Pending): boolean {
  if (a.limits !== b.limits || a.request.args[0] !== b.request.args[0]) return false;
  if (a.scopes.length !== b.scopes.length) return false;
  for (let i = 0; i < a.scopes.length; i++) if (a.scopes[i] !== b.scopes[i]) return false;
  return (
    a.now === b.now ||
    (periodStart('day', a.now) === periodStart('day', b.now) &&
      periodStart('month', a.now) === periodStart('month', b.now))
  );
}

/**
 * Settlements (each with its ticket's finish, or none) gathered during a turn and sent in its check
 * phase, up to BATCH_MAX per script (SETTLE_BATCH): the counters of a key's requests change once per
 * script instead of once per request.
 */
export function createSettlementBatcher(book: RedisBudgetBook) {
  let queue: { finish: FinishStep | null; settle: SettleStep }[] = [];

  function flush(): void {
    const list = queue;
    queue = [];
    for (let from = 0; from < list.length; from += BATCH_MAX) {
      const chunk = list.slice(from, from + BATCH_MAX);
      const keys: string[] = [chunk[0]?.settle.keys[0] ?? ''];
      const args: (string | number)[] = [chunk.length, ''];
      for (const { finish, settle } of chunk) {
        keys.push(settle.keys[1] ?? '', ...(finish?.keys ?? ['', '', '']));
        args.push(...settle.args, ...(finish?.args ?? NO_FINISH));
      }
      // Sent again after a reply that never came, ARGV[2] is 'r': the finishes give no tokens back.
      book.sendSettlement(SETTLEMENTS, keys, args, 1);
    }
  }

  return {
    settle(finish: FinishStep | null, settle: SettleStep): void {
      if (queue.length === 0) sendInCheckPhase(flush);
      queue.push({ finish, settle });
    },
  };
}
