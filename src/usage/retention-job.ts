// The background side of usage retention in `tollgate serve`: prunes raw usage rows once at start and
// then every `intervalMs` (an hour), one run at a time, logging how many rows each run deleted. A run
// that fails is logged and retried at the next interval; closing stops a run between two batches.
import type { Db } from '../db/connect.js';
import type { Logger } from '../observability/logger.js';
import { type PruneResult, pruneRawUsage, retentionCutoff } from './retention.js';

export const RETENTION_INTERVAL_MS = 3_600_000;

export interface RetentionJobOptions {
  readonly db: Db;
  readonly retentionDays: number;
  readonly logger: Pick<Logger, 'info' | 'error'>;
  readonly now: () => number;
  readonly intervalMs?: number;
}

export interface RetentionJob {
  /** Runs a prune now (or joins the one running). */
  run(): Promise<PruneResult | null>;
  /** Stops the timer and the running prune (between two batches), and waits for it. */
  close(): Promise<void>;
}

export function startRetentionJob(options: RetentionJobOptions): RetentionJob {
  const { db, retentionDays, logger, now } = options;
  const stop = new AbortController();
  let running: Promise<PruneResult | null> | null = null;

  async function prune(): Promise<PruneResult | null> {
    const started = now();
    const cutoff = retentionCutoff(started, retentionDays);
    try {
      const result = await pruneRawUsage(db, cutoff, { signal: stop.signal });
      logger.info(
        {
          deleted: result.deleted,
          before: new Date(cutoff).toISOString(),
          complete: result.complete,
          ms: now() - started,
        },
        `usage retention: deleted ${result.deleted} raw usage rows older than ${retentionDays} days`,
      );
      return result;
    } catch (err) {
      logger.error({ err }, 'usage retention: pruning failed; retrying at the next interval');
      return null;
    }
  }

  function run(): Promise<PruneResult | null> {
    running ??= prune().finally(() => {
      running = null;
    });
    return running;
  }

  const timer = setInterval(() => void run(), options.intervalMs ?? RETENTION_INTERVAL_MS);
  timer.unref();
  // The first run right after start, off the start-up path.
  const first = setTimeout(() => void run(), 0);
  first.unref();

  return {
    run,
    async close() {
      clearInterval(timer);
      clearTimeout(first);
      stop.abort();
      await running;
    },
  };
}
