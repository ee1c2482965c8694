import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPgSchema, PG_URL } from '../../test/helpers/pg.js';
import { type DatabaseTarget, type Db, openDatabase } from '../db/connect.js';
import { migrateToLatest } from '../db/migrate.js';
import {
  acquireServeLease,
  type HeldLease,
  type LeaseEnv,
  listLiveInstances,
  processAlive,
  processIdentity,
  readServeLease,
  STALE_MS,
} from './serve-lease.js';

describe('processAlive', () => {
  it('tells a live process from a gone one, a reused pid and our own pid', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    const pid = child.pid ?? 0;
    const identity = processIdentity(pid);
    expect(processAlive(pid, identity)).toBe(true);
    expect(processAlive(pid, null)).toBe(true);
    if (identity !== null) {
      expect(identity).toMatch(/^pid:\[\d+\]\/\d+$/);
      // The pid now names a process started at another time.
      expect(processAlive(pid, `${identity}1`)).toBe(false);
    }
    // An earlier holder with our pid (a restarted container).
    expect(processAlive(process.pid, processIdentity())).toBe(false);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(processAlive(pid, identity)).toBe(false);
    // A holder in another pid namespace cannot be checked from here: it counts as alive (its lease
    // frees when its heartbeat stops).
    if (identity !== null) expect(processAlive(pid, 'pid:[1]/123')).toBe(true);
  });
});

const targets: Array<[string, () => Promise<{ target: DatabaseTarget; drop: () => Promise<void> }>]> = [
  [
    'sqlite',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tollgate-lease-'));
      return {
        target: { kind: 'sqlite', path: join(dir, 'db.sqlite') },
        drop: () => rm(dir, { recursive: true, force: true }),
      };
    },
  ],
];
const pgUrl = PG_URL;
if (pgUrl) {
  targets.push([
    'postgres',
    async () => {
      const schema = await createPgSchema(pgUrl);
      return { target: { kind: 'postgres', url: schema.url }, drop: schema.drop };
    },
  ]);
}

describe.each(targets)('the serve lease on %s', (_name, open) => {
  let db: Db;
  let drop: () => Promise<void>;
  let now: number;
  const held: HeldLease[] = [];
  const alive = new Set<number>();

  /** The clock every lease reads (tests may make each read move it on). */
  let clock = () => now;
  function env(host: string, pid: number): LeaseEnv {
    return { clock: () => clock(), host, pid, pidStart: `start-${pid}`, isAlive: (p) => alive.has(p) };
  }
  /** Takes the lease with a heartbeat that never fires on its own (tests move the clock instead). */
  async function take(
    host: string,
    pid: number,
    onLost: (reason: string) => void = () => {},
    beatMs = 3_600_000,
  ) {
    alive.add(pid);
    const lease = await acquireServeLease(db, env(host, pid), onLost, beatMs);
    held.push(lease);
    return lease;
  }

  beforeEach(async () => {
    const opened = await open();
    drop = opened.drop;
    db = openDatabase(opened.target);
    await migrateToLatest(db);
    now = Date.UTC(2026, 0, 5, 12);
    clock = () => now;
    alive.clear();
  });
  afterEach(async () => {
    for (const lease of held.splice(0)) await lease.release();
    await db.close();
    await drop();
  });

  it('refuses a second server while a live holder on another host heartbeats, and says who and what to do', async () => {
    const first = await take('host-a', 4242);
    now += STALE_MS - 1_000;
    const refused = acquireServeLease(db, env('host-b', 7), () => {});
    await expect(refused).rejects.toMatchObject({ code: 'conflict' });
    const message = await refused.catch((e: Error) => e.message);
    expect(message).toContain('pid 4242 on host host-a');
    expect(message).toContain(`since ${new Date(now - STALE_MS + 1_000).toISOString()}`);
    expect(message).toContain('kill -TERM 4242 on host-a');
    expect(message).toContain('free in 1 s');
    const row = await readServeLease(db);
    expect(row).toMatchObject({ holder: first.instanceId, host: 'host-a', pid: 4242 });
  });

  it('takes a lease whose holder on another host stopped heartbeating 11 s ago', async () => {
    await take('host-a', 4242);
    now += 11_000;
    const second = await take('host-b', 7);
    expect(await readServeLease(db)).toMatchObject({ holder: second.instanceId, host: 'host-b', pid: 7 });
  });

  it('on the same host, takes over at once from a gone process and refuses beside a live one', async () => {
    await take('host-a', 4242);
    now += 1_000;
    // Positive control: the holder still runs.
    await expect(acquireServeLease(db, env('host-a', 5151), () => {})).rejects.toThrow(/kill -TERM 4242\)/);
    alive.delete(4242); // kill -9
    const next = await take('host-a', 5151);
    expect((await readServeLease(db))?.holder).toBe(next.instanceId);
  });

  it('lets exactly one of two servers starting at the same moment take it', async () => {
    alive.add(1).add(2);
    const results = await Promise.allSettled([
      acquireServeLease(db, env('host-a', 1), () => {}, 3_600_000),
      acquireServeLease(db, env('host-b', 2), () => {}, 3_600_000),
    ]);
    for (const r of results) if (r.status === 'fulfilled') held.push(r.value);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'conflict' } });
  });

  it('is free at once after a clean release', async () => {
    const first = await take('host-a', 4242);
    await first.release();
    expect(await readServeLease(db)).toMatchObject({ holder: null });
    await take('host-b', 7);
  });

  it('renews while held, and reports a lease another server took over', async () => {
    const lost: string[] = [];
    await take('host-a', 4242, (reason) => lost.push(reason), 20);
    now += 5_000;
    await waitFor(async () => (await readServeLease(db))?.heartbeat_at === now);
    expect(lost).toEqual([]);
    // Our heartbeat stalls (the clock runs on, nothing renews past it) and host-b takes over.
    const ours = held[0];
    now += 11_000;
    alive.add(7);
    const rows = await db.kysely
      .updateTable('serve_lease')
      .set({ holder: 'someone-else', host: 'host-b', pid: 7, heartbeat_at: now })
      .where('id', '=', 1)
      .executeTakeFirst();
    expect(Number(rows.numUpdatedRows)).toBe(1);
    await waitFor(async () => lost.length > 0);
    expect(lost[0]).toMatch(/another server took over/);
    // Releasing a lost lease leaves the new holder alone.
    await ours?.release();
    expect((await readServeLease(db))?.holder).toBe('someone-else');
  });

  it('never reports a renewal that succeeded as stale, however far the clock moved meanwhile', async () => {
    const lost: string[] = [];
    await take('host-a', 4242, (reason) => lost.push(reason), 20);
    // Every read of the clock moves it past STALE_MS: a renewal that started before a jump ends after it
    // (a CI run saw this race as a lost lease when the test moved the clock during a renewal).
    const from = now;
    clock = () => {
      const at = now;
      now += STALE_MS + 1_000;
      return at;
    };
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The premise: beats ran (each reads the clock at least twice without the fix, once with it).
    expect((now - from) / (STALE_MS + 1_000)).toBeGreaterThanOrEqual(3);
    expect(lost).toEqual([]);
  });

  it('reports a lease it cannot renew for STALE_MS', async () => {
    const lost: string[] = [];
    await take('host-a', 4242, (reason) => lost.push(reason), 20);
    await db.kysely.schema.alterTable('serve_lease').renameTo('serve_lease_away').execute();
    try {
      now += 5_000;
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(lost).toEqual([]);
      now += STALE_MS;
      await waitFor(async () => lost.length > 0);
      expect(lost[0]).toMatch(/could not be renewed for 10 s/);
    } finally {
      await db.kysely.schema.alterTable('serve_lease_away').renameTo('serve_lease').execute();
    }
  });
});

async function waitFor(check: () => Promise<boolean>, ms = 3_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.skipIf(!pgUrl)('the serve lease on PostgreSQL keeps time by the database', () => {
  let db: Db;
  let drop: () => Promise<void>;
  const held: HeldLease[] = [];
  beforeEach(async () => {
    const schema = await createPgSchema(pgUrl ?? '');
    drop = schema.drop;
    db = openDatabase({ kind: 'postgres', url: schema.url });
    await migrateToLatest(db);
  });
  afterEach(async () => {
    for (const lease of held.splice(0)) await lease.release();
    await db.close();
    await drop();
  });
  /** A server on `host` whose clock is `skewMs` off, timing the lease by the database or by itself. */
  const hostEnv = (host: string, pid: number, skewMs: number, databaseClock: boolean): LeaseEnv => ({
    clock: () => Date.now() + skewMs,
    host,
    pid,
    pidStart: `start-${pid}`,
    isAlive: () => true,
    databaseClock,
  });
  const take = async (env: LeaseEnv) => {
    const lease = await acquireServeLease(db, env, () => {}, 3_600_000);
    held.push(lease);
    return lease;
  };

  it('a host whose clock runs a minute ahead does not take a live lease (by its own clock it would)', async () => {
    await take(hostEnv('host-a', 101, -60_000, true));
    const row = await readServeLease(db);
    // Stamped with the database's time, not host-a's (a minute behind).
    expect(Math.abs(Number(row?.heartbeat_at) - Date.now())).toBeLessThan(5_000);
    await expect(take(hostEnv('host-b', 202, 60_000, true))).rejects.toThrow(/another Tollgate server/);
    // Control: timed by its own clock, the same host sees the live holder's heartbeat as a minute old.
    await expect(take(hostEnv('host-b', 202, 60_000, false))).resolves.toBeDefined();
  });
});

describe('several servers: shared on PostgreSQL with Redis, alone otherwise', () => {
  let db: Db;
  let drop: () => Promise<void>;
  const held: HeldLease[] = [];
  const alive = new Set<number>();
  const now = Date.UTC(2026, 0, 5, 12);
  const env = (host: string, pid: number, skewMs = 0): LeaseEnv => ({
    clock: () => now + skewMs,
    host,
    pid,
    pidStart: `start-${pid}`,
    isAlive: (p) => alive.has(p),
    databaseClock: true,
  });
  const take = async (host: string, pid: number, shared: boolean, skewMs = 0) => {
    alive.add(pid);
    const lease = await acquireServeLease(db, env(host, pid, skewMs), () => {}, 3_600_000, shared);
    held.push(lease);
    return lease;
  };
  afterEach(async () => {
    for (const lease of held.splice(0)) await lease.release();
    await db.close();
    await drop();
  });

  describe('on SQLite', () => {
    beforeEach(async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tollgate-lease-'));
      drop = () => rm(dir, { recursive: true, force: true });
      db = openDatabase({ kind: 'sqlite', path: join(dir, 'db.sqlite') });
      await migrateToLatest(db);
    });

    it('serves one instance even when Redis is configured, and says to use PostgreSQL and Redis', async () => {
      const first = await take('host-a', 11, true);
      expect(first.shared).toBe(false);
      const refused = acquireServeLease(db, env('host-b', 12), () => {}, 3_600_000, true);
      await expect(refused).rejects.toMatchObject({ code: 'conflict' });
      await expect(refused).rejects.toThrow(
        /SQLite serves one instance; to run several, use PostgreSQL and Redis/,
      );
      // Positive control: once the first is released, the second serves.
      await first.release();
      await expect(take('host-b', 12, true)).resolves.toBeDefined();
    });
  });

  describe.skipIf(!pgUrl)('on PostgreSQL', () => {
    beforeEach(async () => {
      const schema = await createPgSchema(pgUrl ?? '');
      drop = schema.drop;
      db = openDatabase({ kind: 'postgres', url: schema.url });
      await migrateToLatest(db);
      alive.clear();
    });

    it('lets several servers with Redis serve together and lists them with their clocks', async () => {
      const a = await take('host-a', 21, true, 0);
      const b = await take('host-b', 22, true, 1_500);
      const c = await take('host-c', 23, true, -700);
      expect([a.shared, b.shared, c.shared]).toEqual([true, true, true]);
      // No lease row is taken: a shared server does not serve alone.
      expect((await readServeLease(db))?.holder).toBeNull();
      const listed = await listLiveInstances(db, () => now);
      expect(listed.map((i) => i.instanceId).sort()).toEqual(
        [a.instanceId, b.instanceId, c.instanceId].sort(),
      );
      const byHost = new Map(listed.map((i) => [i.host, i]));
      expect(byHost.get('host-b')).toMatchObject({ pid: 22, shared: true });
      // Stamped by the database's clock (real time), and by each instance's own (now + skew).
      expect(Math.abs((byHost.get('host-a')?.heartbeatAt ?? 0) - Date.now())).toBeLessThan(5_000);
      expect(byHost.get('host-b')?.ownHeartbeatAt).toBe(now + 1_500);
      expect(byHost.get('host-c')?.ownHeartbeatAt).toBe(now - 700);
      // A released instance is no longer listed.
      await b.release();
      expect((await listLiveInstances(db, () => now)).map((i) => i.host).sort()).toEqual([
        'host-a',
        'host-c',
      ]);
    });

    it('refuses a server without Redis beside a shared one, and a shared one beside a server without Redis', async () => {
      // A second server without Redis beside one without Redis: refused, saying to set TOLLGATE_REDIS_URL.
      const alone = await take('host-a', 31, false);
      expect(alone.shared).toBe(false);
      const second = acquireServeLease(db, env('host-b', 32), () => {}, 3_600_000, false);
      await expect(second).rejects.toThrow(/set TOLLGATE_REDIS_URL \(redis\.url\) on every one of them/);
      // A shared server beside it: refused too (the one without Redis keeps budgets in its process).
      const beside = acquireServeLease(db, env('host-b', 32), () => {}, 3_600_000, true);
      await expect(beside).rejects.toThrow(/That server runs without Redis/);
      await alone.release();
      // Positive control: with the server alone gone, shared servers start; then one without Redis is refused.
      await take('host-b', 32, true);
      await take('host-c', 33, true);
      const late = acquireServeLease(db, env('host-d', 34), () => {}, 3_600_000, false);
      await expect(late).rejects.toMatchObject({ code: 'conflict' });
      await expect(late).rejects.toThrow(/It shares them through Redis.*\n.*\n.*set TOLLGATE_REDIS_URL/);
    });

    it('a shared instance killed on the same host no longer blocks a server without Redis', async () => {
      await take('host-a', 41, true);
      await expect(acquireServeLease(db, env('host-a', 42), () => {}, 3_600_000, false)).rejects.toThrow(
        /kill -TERM 41\)/,
      );
      alive.delete(41); // kill -9
      await expect(take('host-a', 42, false)).resolves.toMatchObject({ shared: false });
    });

    it('a shared server stops when a server without Redis took the database (its heartbeat had stalled)', async () => {
      const lost: string[] = [];
      alive.add(51);
      const lease = await acquireServeLease(db, env('host-a', 51), (r) => lost.push(r), 20, true);
      held.push(lease);
      await db.kysely.updateTable('serve_lease').set({ holder: 'other', heartbeat_at: Date.now() }).execute();
      await waitFor(async () => lost.length > 0);
      expect(lost[0]).toMatch(/a server without Redis took this database/);
    });
  });
});
