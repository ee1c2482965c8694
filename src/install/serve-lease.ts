// Who may serve a database. A server without Redis keeps budgets and rate limits in its process, so
// a second server beside it would multiply every limit: it serves alone. On PostgreSQL with Redis
// (redis.url) budgets and rate limits are shared, so several servers may serve one database. Every
// server registers as an instance (one row: host, pid, start, heartbeat by the database's clock and by
// its own), and a server serving alone also takes the lease — one row — in the same transaction:
//   - a lease or instance whose holder stopped heartbeating for STALE_MS is free;
//   - on the same host, one whose process is gone (no such pid, or the pid now belongs to a process
//     started at another time) is free at once, so a server restarted after `kill -9` starts at once;
//   - a server that finds its lease taken (its heartbeat stalled and another server took over), or that
//     cannot renew it for STALE_MS, stops serving rather than serve beside the new holder.
// CLI commands never take the lease: they work beside running servers.
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
  /** Serving beside other instances (PostgreSQL with Redis), or alone. */
  readonly shared: boolean;
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

/** Whether a holder's row still stands for a live server (heartbeat fresh, and its process alive on this host). */
function live(row: LeaseRow, env: LeaseEnv, now: number): boolean {
  if (row.holder === null || row.heartbeat_at === null) return false;
  if (now - Number(row.heartbeat_at) >= STALE_MS) return false;
  return !(row.host === env.host && row.pid !== null && !env.isAlive(Number(row.pid), row.pid_start));
}

/** How to run several servers on this kind of database (the last word of every refusal). */
function severalServers(dialect: Db['dialect']): string {
  return dialect === 'sqlite'
    ? 'SQLite serves one instance; to run several, use PostgreSQL and Redis (TOLLGATE_DATABASE_URL and TOLLGATE_REDIS_URL on every server).'
    : 'To run several servers on this PostgreSQL database, set TOLLGATE_REDIS_URL (redis.url) on every one of them: budgets and rate limits are then shared through Redis.';
}

/** Why the database is not free for this server, for the refusal; null when it may serve. */
function heldBy(
  row: LeaseRow,
  env: LeaseEnv,
  now: number,
  dialect: Db['dialect'],
  shared: boolean,
): string | null {
  if (!live(row, env, now)) return null;
  const age = now - Number(row.heartbeat_at);
  const sameHost = row.host === env.host;
  const since = row.started_at === null ? 'an unknown time' : new Date(Number(row.started_at)).toISOString();
  const waitS = Math.ceil((STALE_MS - age) / 1000);
  const stop = sameHost
    ? `Stop that server first (kill -TERM ${row.pid ?? '<pid>'}), then start this one.`
    : `Stop that server first (kill -TERM ${row.pid ?? '<pid>'} on ${row.host ?? 'its host'}); if it crashed, its lease is free in ${waitS} s: start again then.`;
  return [
    `another Tollgate server is serving this database: pid ${row.pid ?? '?'} on host ${row.host ?? '?'}, since ${since} (last heartbeat ${Math.max(0, Math.round(age / 1000))} s ago).`,
    shared
      ? 'That server runs without Redis: it keeps budgets and rate limits in its process, so no other server may serve beside it.'
      : 'A server without Redis keeps budgets and rate limits in its process, so a second server would multiply every limit.',
    shared ? `${stop} Give it the same TOLLGATE_REDIS_URL to serve beside others.` : stop,
    severalServers(dialect),
    'CLI commands do not need the lease and keep working beside it.',
  ].join('\n');
}

/** Instance rows not heartbeated for this long are deleted when a server starts (the table stays small). */
export const FORGET_INSTANCE_MS = 3_600_000;

/**
 * Takes the database for this server in one transaction, or throws AppError('conflict') saying who
 * serves it and what to configure. `shared` (PostgreSQL with Redis) lets it serve beside other shared
 * servers; otherwise it serves alone and takes the lease. `onLost` is called (once) if the server must
 * stop: its lease was taken by another server, a server serving alone started beside it, or it could not
 * renew its rows for STALE_MS.
 */
export async function acquireServeLease(
  db: Db,
  env: LeaseEnv,
  onLost: (reason: string) => void,
  heartbeatMs = HEARTBEAT_MS,
  sharedWanted = false,
  /** The version of the master key this process was started with (see Installation). */
  masterKeyVersion: number | null = null,
): Promise<HeldLease> {
  const instanceId = randomBytes(12).toString('hex');
  const byDatabase = env.databaseClock === true && db.dialect === 'postgres';
  // SQLite serves one instance whatever the configuration says.
  const shared = sharedWanted && db.dialect === 'postgres';
  await writeTransaction(db, async (tx) => {
    // The lease row is locked by every starting server (shared or not): starts are serialised.
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
      const refusal = heldBy(row, env, now, db.dialect, shared);
      if (refusal !== null) throw new AppError('conflict', refusal);
    }
    const instances = await tx
      .selectFrom('serve_instances')
      .select(['instance_id', 'host', 'pid', 'pid_start', 'started_at', 'heartbeat_at', 'shared'])
      .execute();
    for (const other of instances) {
      // A shared server may serve beside other shared ones; anyone else is refused beside a live one.
      if (shared && Number(other.shared) === 1) continue;
      const asLease: LeaseRow = {
        holder: other.instance_id,
        host: other.host,
        pid: other.pid,
        pid_start: other.pid_start,
        started_at: other.started_at,
        heartbeat_at: other.heartbeat_at,
      };
      if (!live(asLease, env, now)) continue;
      const refusal = heldBy(asLease, env, now, db.dialect, shared) ?? '';
      throw new AppError(
        'conflict',
        Number(other.shared) === 1
          ? refusal.replace(
              'A server without Redis keeps',
              'It shares them through Redis, but a server without Redis keeps',
            )
          : refusal,
      );
    }
    await tx
      .deleteFrom('serve_instances')
      .where('heartbeat_at', '<', now - FORGET_INSTANCE_MS)
      .execute();
    const values = {
      holder: instanceId,
      host: env.host,
      pid: env.pid,
      pid_start: env.pidStart,
      started_at: now,
      heartbeat_at: now,
    };
    if (!shared) {
      if (row) await tx.updateTable('serve_lease').set(values).where('id', '=', 1).execute();
      else
        await tx
          .insertInto('serve_lease')
          .values({ id: 1, ...values })
          .execute();
    }
    await tx
      .insertInto('serve_instances')
      .values({
        instance_id: instanceId,
        host: env.host,
        pid: env.pid,
        pid_start: env.pidStart,
        shared: shared ? 1 : 0,
        started_at: now,
        heartbeat_at: now,
        own_heartbeat_at: env.clock(),
        master_key_version: masterKeyVersion,
      })
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
  /** Renews this server's rows; the reason it must stop, or null. */
  const renew = async (now: number): Promise<string | null> => {
    const instance = await db.kysely
      .updateTable('serve_instances')
      .set({ heartbeat_at: byDatabase ? DB_NOW_MS : now, own_heartbeat_at: now })
      .where('instance_id', '=', instanceId)
      .executeTakeFirst();
    if (shared) {
      if (Number(instance.numUpdatedRows) === 0)
        return 'this server’s instance row was removed (its heartbeat had stalled)';
      // A server serving alone took the database (every shared server's heartbeat had stalled).
      const lease = await readServeLease(db);
      if (lease?.holder != null)
        return 'a server without Redis took this database (this server’s heartbeat had stalled)';
      return null;
    }
    const result = await db.kysely
      .updateTable('serve_lease')
      .set({ heartbeat_at: byDatabase ? DB_NOW_MS : now })
      .where('id', '=', 1)
      .where('holder', '=', instanceId)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0)
      return 'another server took over this database’s lease (this server’s heartbeat had stalled)';
    return null;
  };
  const beat = async () => {
    if (lost || beating) return;
    const now = env.clock();
    try {
      const reason = await renew(now);
      if (reason !== null) {
        lose(reason);
        return;
      }
      // Renewed: the lease is fresh, however long the write took (a clock read now would count a slow
      // write as a stall).
      lastRenewed = now;
      return;
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
    shared,
    async release() {
      clearInterval(timer);
      if (beating) await beating;
      if (lost) return;
      lost = true;
      await db.kysely.deleteFrom('serve_instances').where('instance_id', '=', instanceId).execute();
      if (shared) return;
      await db.kysely
        .updateTable('serve_lease')
        .set({ holder: null, heartbeat_at: null })
        .where('id', '=', 1)
        .where('holder', '=', instanceId)
        .execute();
    },
  };
}

/** A live serving instance, for `tollgate doctor` (clock skew between instances) and `status`. */
export interface LiveInstance {
  readonly instanceId: string;
  readonly host: string;
  readonly pid: number;
  readonly shared: boolean;
  readonly startedAt: number;
  /** Its last heartbeat by the database's clock (PostgreSQL; on SQLite its own clock)… */
  readonly heartbeatAt: number;
  /** …and by its own clock at the same moment: the difference is its clock's skew (± a write's time). */
  readonly ownHeartbeatAt: number;
  readonly skewMs: number;
  /** The version of the master key it was started with (null: not recorded). */
  readonly masterKeyVersion: number | null;
}

/**
 * The instances whose heartbeat is younger than STALE_MS by the database's clock (PostgreSQL) or by
 * `clock` (SQLite), oldest first.
 */
export async function listLiveInstances(db: Db, clock: Clock): Promise<LiveInstance[]> {
  const now =
    db.dialect === 'postgres'
      ? Number(
          (await sql<{ now: string | number }>`select ${DB_NOW_MS} as now`.execute(db.kysely)).rows[0]?.now,
        )
      : clock();
  const rows = await db.kysely
    .selectFrom('serve_instances')
    .selectAll()
    .where('heartbeat_at', '>', now - STALE_MS)
    .orderBy('started_at')
    .execute();
  return rows.map((r) => ({
    instanceId: r.instance_id,
    host: r.host,
    pid: Number(r.pid),
    shared: Number(r.shared) === 1,
    startedAt: Number(r.started_at),
    heartbeatAt: Number(r.heartbeat_at),
    ownHeartbeatAt: Number(r.own_heartbeat_at),
    skewMs: Number(r.own_heartbeat_at) - Number(r.heartbeat_at),
    masterKeyVersion: r.master_key_version === null ? null : Number(r.master_key_version),
  }));
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
