// One server per database, until several instances can share budgets and rate limits (both live in
// the serving process: a second server on the same database would multiply every limit). The server
// takes a lease — one row: holder instance, host name, pid, start — in one transaction at start,
// heartbeats it, and releases it on a clean shutdown. It is a lease, not a lock a crash leaves behind:
//   - a lease whose holder stopped heartbeating for STALE_MS is free;
//   - on the same host, a lease whose process is gone (no such pid, or the pid now belongs to a process
//     started at another time) is free at once, so a server restarted after `kill -9` starts at once;
//   - a server that finds its lease taken (its heartbeat stalled and another server took over), or that
//     cannot renew it for STALE_MS, stops serving rather than serve beside the new holder.
// CLI commands never take the lease: they work beside a running server.
import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { sql } from 'kysely';
import type { Db } from '../db/connect.js';
import { writeTransaction } from '../db/tx.js';
import type { Clock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';

/** A lease not heartbeated for this long is free. */
export const STALE_MS = 10_000;
/** How often the holder renews it (several renewals fit in STALE_MS, so one slow write loses nothing). */
export const HEARTBEAT_MS = 2_500;

/** What the lease needs to know about this process and its host; injectable for tests. */
export interface LeaseEnv {
  readonly clock: Clock;
  readonly host: string;
  readonly pid: number;
  /** This process's pid namespace and start time (see processIdentity), or null where unreadable. */
  readonly pidStart: string | null;
  /**
   * Whether the process `pid` on this host is still the one that took the lease: false when no such
   * process exists or it is not the one `identity` names (its pid was reused).
   */
  isAlive(pid: number, identity: string | null): boolean;
  /**
   * Time the lease by the database's clock where servers on several hosts share one (PostgreSQL), so a
   * host whose clock runs ahead cannot see a live holder's heartbeat as stale. `clock` still times this
   * process's own renewals.
   */
  readonly databaseClock?: boolean;
}

/** The database server's time in epoch milliseconds (PostgreSQL's `clock_timestamp()`). */
const DB_NOW_MS = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

export interface HeldLease {
  readonly instanceId: string;
  /** Stops the heartbeat and frees the lease (if still ours). */
  release(): Promise<void>;
}

/** The start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or null. */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** This process's pid namespace (Linux), e.g. `pid:[4026531836]`, or null. */
function pidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return null;
  }
}

/**
 * What identifies this process on its host beyond its pid: `NAMESPACE/START` (its pid namespace and
 * start time, Linux), or null where neither can be read.
 */
export function processIdentity(pid: number = process.pid): string | null {
  const start = processStart(pid);
  return start === null ? null : `${pidNamespace() ?? '?'}/${start}`;
}

/**
 * Whether the process that recorded `identity` (see processIdentity) as `pid` may still run. False when
 * no such process exists, or the pid now names a process started at another time (pid reuse), or it is
 * our own pid. A holder in another pid namespace (containers sharing a host name) cannot be checked from
 * here: it counts as alive, and its lease frees once its heartbeat stops.
 */
export function processAlive(pid: number, identity: string | null): boolean {
  const cut = identity === null ? -1 : identity.lastIndexOf('/');
  const namespace = identity === null || cut < 0 ? null : identity.slice(0, cut);
  const start = identity === null ? null : identity.slice(cut + 1);
  const ours = pidNamespace();
  if (namespace !== null && namespace !== '?' && ours !== null && namespace !== ours) return true;
  // Our own pid: the recorded holder was an earlier process with the same pid (a restarted container).
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start === null) return true;
  const now = processStart(pid);
  // Without /proc (not Linux) pid reuse cannot be told apart: a live pid counts as the holder.
  return now === null || now === start;
}

export function systemLeaseEnv(clock: Clock): LeaseEnv {
  return {
    clock,
    host: hostname(),
    pid: process.pid,
    pidStart: processIdentity(),
    isAlive: processAlive,
    databaseClock: true,
  };
}

interface LeaseRow {
  holder: string | null;
  host: string | null;
  pid: number | null;
  pid_start: string | null;
  started_at: number | null;
  heartbeat_at: number | null;
}

/** Why the lease is not free, for the refusal; null when it may be taken. */
function heldBy(row: LeaseRow, env: LeaseEnv, now: number): string | null {
  if (row.holder === null || row.heartbeat_at === null) return null;
  const age = now - Number(row.heartbeat_at);
  if (age >= STALE_MS) return null;
  const sameHost = row.host === env.host;
  if (sameHost && row.pid !== null && !env.isAlive(Number(row.pid), row.pid_start)) return null;
  const since = row.started_at === null ? 'an unknown time' : new Date(Number(row.started_at)).toISOString();
  const waitS = Math.ceil((STALE_MS - age) / 1000);
  return [
    `another Tollgate server is serving this database: pid ${row.pid ?? '?'} on host ${row.host ?? '?'}, since ${since} (last heartbeat ${Math.max(0, Math.round(age / 1000))} s ago).`,
    'Budgets and rate limits are kept by the serving process, so a second server would multiply every limit; one server per database until scale-out exists.',
    sameHost
      ? `Stop that server first (kill -TERM ${row.pid ?? '<pid>'}), then start this one.`
      : `Stop that server first (kill -TERM ${row.pid ?? '<pid>'} on ${row.host ?? 'its host'}); if it crashed, its lease is free in ${waitS} s: start again then.`,
    'CLI commands do not need the lease and keep working beside it.',
  ].join('\n');
}

/**
 * Takes the lease in one transaction, or throws AppError('conflict') saying who holds it and what to
 * do. `onLost` is called (once) if the lease is later found taken by another server or cannot be
 * renewed for STALE_MS: the caller must stop serving.
 */
export async function acquireServeLease(
  db: Db,
  env: LeaseEnv,
  onLost: (reason: string) => void,
  heartbeatMs = HEARTBEAT_MS,
): Promise<HeldLease> {
  const instanceId = randomBytes(12).toString('hex');
  const byDatabase = env.databaseClock === true && db.dialect === 'postgres';
  await writeTransaction(db, async (tx) => {
    const locked =
      db.dialect === 'postgres'
        ? await sql<LeaseRow>`select holder, host, pid, pid_start, started_at, heartbeat_at
            from serve_lease where id = 1 for update`.execute(tx)
        : await sql<LeaseRow>`select holder, host, pid, pid_start, started_at, heartbeat_at
            from serve_lease where id = 1`.execute(tx);
    const row = locked.rows[0];
    const now = byDatabase
      ? Number((await sql<{ now: string | number }>`select ${DB_NOW_MS} as now`.execute(tx)).rows[0]?.now)
      : env.clock();
    if (row) {
      const refusal = heldBy(row, env, now);
      if (refusal !== null) throw new AppError('conflict', refusal);
    }
    const values = {
      holder: instanceId,
      host: env.host,
      pid: env.pid,
      pid_start: env.pidStart,
      started_at: now,
      heartbeat_at: now,
    };
    if (row) await tx.updateTable('serve_lease').set(values).where('id', '=', 1).execute();
    else
      await tx
        .insertInto('serve_lease')
        .values({ id: 1, ...values })
        .execute();
  });

  let lastRenewed = env.clock();
  let lost = false;
  let beating: Promise<void> | null = null;
  const lose = (reason: string) => {
    if (lost) return;
    lost = true;
    clearInterval(timer);
    onLost(reason);
  };
  const beat = async () => {
    if (lost || beating) return;
    const now = env.clock();
    try {
      const result = await db.kysely
        .updateTable('serve_lease')
        .set({ heartbeat_at: byDatabase ? DB_NOW_MS : now })
        .where('id', '=', 1)
        .where('holder', '=', instanceId)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) {
        lose('another server took over this database’s lease (this server’s heartbeat had stalled)');
        return;
      }
      lastRenewed = now;
    } catch {
      // The database is unreachable or busy: retried on the next beat, up to STALE_MS.
    }
    if (env.clock() - lastRenewed >= STALE_MS)
      lose(`the lease could not be renewed for ${STALE_MS / 1000} s; another server may take it over`);
  };
  const timer = setInterval(() => {
    beating = beat().finally(() => {
      beating = null;
    });
  }, heartbeatMs);
  // The server keeps the process alive; the heartbeat must not keep a failed start from exiting.
  timer.unref();

  return {
    instanceId,
    async release() {
      clearInterval(timer);
      if (beating) await beating;
      if (lost) return;
      lost = true;
      await db.kysely
        .updateTable('serve_lease')
        .set({ holder: null, heartbeat_at: null })
        .where('id', '=', 1)
        .where('holder', '=', instanceId)
        .execute();
    },
  };
}

/** The lease as stored (for `status` and tests). */
export async function readServeLease(db: Db): Promise<LeaseRow | null> {
  const row = await db.kysely
    .selectFrom('serve_lease')
    .select(['holder', 'host', 'pid', 'pid_start', 'started_at', 'heartbeat_at'])
    .where('id', '=', 1)
    .executeTakeFirst();
  return row ?? null;
}
