// Polls the change feed and tells caches what changed, so CLI changes reach a running server
// (or other instances) within a second without a restart. The feed is the truth; a push channel
// (./push.ts) only calls `wake` so a change is read at once instead of at the next tick.
import type { Db } from '../db/connect.js';
import { type ChangeKind, changesSince, latestChangeSeq } from './change-feed.js';

export type ChangeListener = (kinds: ReadonlySet<ChangeKind>) => void;

/** The fallback poll: a lost or absent push costs at most this long (plus one query). */
export const CHANGE_POLL_MS = 250;
/** Rows read per query; a fuller page is followed by another poll at once. */
const PAGE = 5000;

export function createChangePoller(db: Db, listener: ChangeListener, intervalMs = CHANGE_POLL_MS) {
  let last = 0;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  // A wake-up that arrived while a poll ran: that poll may have read before the change committed.
  let again = false;
  let stopped = false;

  async function poll(): Promise<void> {
    const rows = await changesSince(db.kysely, last, PAGE);
    if (rows.length === 0) return;
    if (rows.length === PAGE) again = true;
    last = Number(rows[rows.length - 1]?.seq ?? last);
    listener(new Set(rows.map((r) => r.kind as ChangeKind)));
  }

  function run(): void {
    again = false;
    running = poll()
      .catch(() => {})
      .finally(() => {
        running = null;
        if (again && !stopped) run();
      });
  }

  return {
    async start(): Promise<void> {
      stopped = false;
      last = await latestChangeSeq(db.kysely);
      timer = setInterval(() => {
        // A slow poll is not stacked behind itself: the tick is skipped.
        if (!running) run();
      }, intervalMs);
      timer.unref();
    },
    /** Polls as soon as possible (a push said something changed); never waits on the caller's path. */
    wake(): void {
      if (stopped || timer === null) return;
      if (running) again = true;
      else run();
    },
    /** Polls now (tests use it to avoid waiting for the interval). */
    pollNow: () => poll(),
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = null;
      while (running) await running;
    },
  };
}
