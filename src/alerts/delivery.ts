// Sends pending alerts to the webhook, one at a time, from the alerts table: the table is the queue (its
// rows are bounded by the conditions that can occur), memory holds one batch of ids. Each attempt is
// claimed in the database first; a failure is retried with exponential backoff up to `maxAttempts`; an
// answer that cannot get better (a redirect, a 4xx, a refused address) ends it at once as `failed`.
// A crash mid-attempt leaves the row pending: after its claim lapses the next process sends it again, so
// a receiver may in that one case see an alert twice (`alert_id` lets it tell).
import type { Db } from '../db/connect.js';
import type { Clock } from '../lib/clock.js';
import type { OutboundSettings } from '../outbound/outbound.js';
import { claim, dueAlerts, nextDue, type Outcome, recordOutcome } from './alert.repo.js';
import type { PostWebhook } from './webhook-post.js';

export interface DeliveryOptions {
  /** The webhook URL; null = nothing is sent (alerts stay recorded as `off` or `pending`). */
  readonly url: string | null;
  readonly allowLinkLocal: boolean;
  readonly timeoutMs?: number;
  readonly maxAttempts?: number;
  /** Delay before the second attempt; doubled each time up to `maxBackoffMs`. */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Longest wait between two looks at the table (other processes' alerts, missed wake-ups). */
  readonly pollMs?: number;
  readonly userAgent: string;
  /** upstream.proxy_url / no_proxy / ca_file; null or absent = direct, Node's roots. */
  readonly outbound?: OutboundSettings | null;
}

const BATCH = 20;

export function createDelivery(db: Db, clock: Clock, options: DeliveryOptions, post: PostWebhook) {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxAttempts = options.maxAttempts ?? 10;
  const backoffMs = options.backoffMs ?? 2_000;
  const maxBackoffMs = options.maxBackoffMs ?? 600_000;
  const pollMs = options.pollMs ?? 30_000;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let again = false;
  let closed = false;

  function backoff(attempts: number): number {
    return Math.min(maxBackoffMs, backoffMs * 2 ** Math.max(0, attempts - 1));
  }

  async function attempt(row: { id: string; payload: string; attempts: number }): Promise<void> {
    const url = options.url as string;
    const now = clock();
    if (!(await claim(db.kysely, row.id, now, now + timeoutMs + 30_000))) return;
    const attempts = Number(row.attempts) + 1;
    const result = await post(url, row.payload, {
      timeoutMs,
      allowLinkLocal: options.allowLinkLocal,
      headers: { 'user-agent': options.userAgent, 'x-tollgate-alert-id': row.id },
      ...(options.outbound ? { outbound: options.outbound } : {}),
    });
    const at = clock();
    const outcome: Outcome = result.ok
      ? { kind: 'delivered', at }
      : result.retry && attempts < maxAttempts
        ? { kind: 'retry', at: at + backoff(attempts), error: result.error }
        : {
            kind: 'failed',
            error: result.retry ? `${result.error} (gave up after ${attempts} attempts)` : result.error,
          };
    await recordOutcome(db.kysely, row.id, outcome);
  }

  /** Sends everything due now; returns when the table has nothing due. */
  async function run(): Promise<void> {
    if (options.url === null) return;
    for (;;) {
      const due = await dueAlerts(db.kysely, clock(), BATCH);
      for (const row of due) {
        if (closed) return;
        await attempt(row);
      }
      if (due.length < BATCH || closed) return;
    }
  }

  function schedule(delayMs: number): void {
    if (closed || options.url === null) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(
      () => {
        timer = null;
        wake();
      },
      Math.max(0, delayMs),
    );
    timer.unref();
  }

  /** Looks at the table now (or right after the run in progress). */
  function wake(): void {
    if (closed || options.url === null) return;
    if (running) {
      again = true;
      return;
    }
    running = run()
      .catch(() => undefined) // a database hiccup: the next wake or poll tries again
      .then(async () => {
        const next = await nextDue(db.kysely).catch(() => null);
        schedule(next === null ? pollMs : Math.min(pollMs, next - clock()));
      })
      .finally(() => {
        running = null;
        if (again) {
          again = false;
          wake();
        }
      });
  }

  return {
    wake,
    start: () => wake(),
    /** Resolves when no run is in progress (tests). */
    async idle(): Promise<void> {
      while (running) await running;
    },
    /** Stops; an attempt in flight ends within its timeout and records its outcome. */
    async close(): Promise<void> {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      while (running) await running;
    },
  };
}

export type Delivery = ReturnType<typeof createDelivery>;
