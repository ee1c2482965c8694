// Polls the change feed and tells caches what changed, so CLI changes reach a running server
// (or other instances) within a second without a restart.
import type { Db } from '../db/connect.js';
import { type ChangeKind, changesSince, latestChangeSeq } from './change-feed.js';

export type ChangeListener = (kinds: ReadonlySet<ChangeKind>) => void;

export function createChangePoller(db: Db, listener: ChangeListener, intervalMs = 250) {
  let last = 0;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;

  async function poll(): Promise<void> {
    const rows = await changesSince(db.kysely, last, 5000);
    if (rows.length === 0) return;
    last = Number(rows[rows.length - 1]?.seq ?? last);
    listener(new Set(rows.map((r) => r.kind as ChangeKind)));
  }

  return {
    async start(): Promise<void> {
      last = await latestChangeSeq(db.kysely);
      timer = setInterval(() => {
        if (running) return;
        running = poll()
          .catch(() => {})
          .finally(() => {
            running = null;
          });
      }, intervalMs);
      timer.unref();
    },
    /** Polls now (tests use it to avoid waiting for the interval). */
    pollNow: () => poll(),
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = null;
      if (running) await running;
    },
  };
}
