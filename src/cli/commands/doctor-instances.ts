// `tollgate doctor`'s checks of a multi-instance set-up: Redis (reachable, Redis ≥ 7 or Valkey, who hears
// pushed changes), the live instances (several only with Redis), and clock skew — this host, the
// instances and Redis against the database's clock.
import { sql } from 'kysely';
import { changeChannel } from '../../changes/push.js';
import type { Config } from '../../config/load.js';
import type { Installation } from '../../install/installation.js';
import { type LiveInstance, listLiveInstances } from '../../install/serve-lease.js';
import type { Clock } from '../../lib/clock.js';
import { isAppError } from '../../lib/errors.js';
import { connectRedis, type Redis, redactUrl } from '../../redis/connect.js';

export interface Check {
  check: string;
  ok: boolean;
  /** Passed, but worth a look (e.g. a clock skew above CLOCK_WARN_MS). */
  warning?: boolean;
  detail: string;
}

/**
 * Clock skew bounds. Revocation and other changes do not depend on clocks (they travel through the
 * change feed), but key and session expiry and each usage record's time — and so the day or month, the
 * budget period, a request counts in — are read from each instance's clock. Above 1 s, the bound
 * Tollgate promises for a change to reach every instance, a clock makes expiry less exact than
 * revocation: a warning. Above 5 s a clock is not synchronised at all (NTP keeps hosts within
 * milliseconds): an expired key works 5 s longer on that instance and requests of a month's last 5 s
 * count in the next: a failure.
 */
export const CLOCK_WARN_MS = 1_000;
export const CLOCK_FAIL_MS = 5_000;

/** The database's clock in epoch milliseconds (PostgreSQL). */
const DB_NOW_MS = sql<string | number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

export type RedisKind = { ok: true; label: string } | { ok: false; label: string };

/** Redis ≥ 7 or Valkey (any: it forked from Redis 7.2), from `INFO server`. */
export function redisKind(info: string): RedisKind {
  const field = (name: string) => new RegExp(`^${name}:([^\\r\\n]*)`, 'm').exec(info)?.[1]?.trim() ?? null;
  const valkey = field('valkey_version');
  if (valkey !== null || field('server_name') === 'valkey')
    return { ok: true, label: `Valkey ${valkey ?? '?'}` };
  const version = field('redis_version');
  if (version === null) return { ok: false, label: 'an unknown server (no redis_version in INFO)' };
  const major = Number(version.split('.')[0]);
  return major >= 7
    ? { ok: true, label: `Redis ${version}` }
    : { ok: false, label: `Redis ${version} (Redis 7 or later, or Valkey, is required)` };
}

export async function multiInstanceChecks(
  config: Config,
  installation: Installation | null,
  clock: Clock,
): Promise<Check[]> {
  const checks: Check[] = [];
  const url = config.redis.url;
  let redis: Redis | null = null;
  try {
    if (url === null) checks.push({ check: 'redis', ok: true, detail: 'not configured (one instance)' });
    else {
      const connected = await redisCheck(url, clock);
      checks.push(connected.check);
      redis = connected.redis;
    }
    if (!installation) return checks;
    const instances = await listLiveInstances(installation.db, clock);
    checks.push(instancesCheck(config, installation, instances));
    if (redis) checks.push(await pushCheck(redis, installation.orgId, instances.length));
    checks.push(await clockCheck(installation, instances, redis, clock));
    return checks;
  } catch (error) {
    checks.push({ check: 'instances', ok: false, detail: isAppError(error) ? error.message : reason(error) });
    return checks;
  } finally {
    await redis?.quit().catch(() => redis?.disconnect());
  }
}

async function redisCheck(url: string, clock: Clock): Promise<{ check: Check; redis: Redis | null }> {
  const started = clock();
  let redis: Redis;
  try {
    redis = await connectRedis(url, { name: 'tollgate-doctor' });
  } catch (error) {
    return {
      check: { check: 'redis', ok: false, detail: isAppError(error) ? error.message : reason(error) },
      redis: null,
    };
  }
  const kind = redisKind(await redis.info('server'));
  const ms = clock() - started;
  return {
    check: { check: 'redis', ok: kind.ok, detail: `${redactUrl(url)}: ${kind.label}, answered in ${ms} ms` },
    redis,
  };
}

function instancesCheck(config: Config, installation: Installation, live: readonly LiveInstance[]): Check {
  const list = live.map((i) => `${i.host} pid ${i.pid}${i.shared ? '' : ' (alone)'}`).join(', ');
  const dialect = installation.db.dialect;
  if (live.length === 0) return { check: 'instances', ok: true, detail: 'no server is running' };
  if (live.length === 1) return { check: 'instances', ok: true, detail: `1 live: ${list}` };
  // Several: each must share budgets and rate limits through Redis, and so must this configuration.
  const alone = live.filter((i) => !i.shared);
  if (alone.length > 0 || config.redis.url === null || dialect !== 'postgres') {
    const fix =
      dialect === 'postgres'
        ? 'set TOLLGATE_REDIS_URL (redis.url) to the same Redis on every instance'
        : 'SQLite serves one instance: use PostgreSQL and Redis (TOLLGATE_DATABASE_URL, TOLLGATE_REDIS_URL)';
    const without =
      config.redis.url === null ? 'this configuration has no Redis' : `${alone.length} serve without Redis`;
    return {
      check: 'instances',
      ok: false,
      detail: `${live.length} live (${list}) but ${without}: budgets and rate limits would not be shared; ${fix}`,
    };
  }
  return { check: 'instances', ok: true, detail: `${live.length} live, sharing through Redis: ${list}` };
}

/** How many live instances hear pushed changes (the others apply them by polling, within 250 ms). */
async function pushCheck(redis: Redis, orgId: string, live: number): Promise<Check> {
  const answer = (await redis.call('PUBSUB', 'NUMSUB', changeChannel(orgId))) as [string, number | string];
  const subscribed = Number(answer[1] ?? 0);
  const all = subscribed >= live;
  return {
    check: 'push',
    ok: true,
    ...(all ? {} : { warning: true }),
    detail: all
      ? `${subscribed} subscriber(s) hear pushed changes`
      : `${subscribed} of ${live} live instance(s) hear pushed changes; the others apply changes by polling`,
  };
}

async function clockCheck(
  installation: Installation,
  live: readonly LiveInstance[],
  redis: Redis | null,
  clock: Clock,
): Promise<Check> {
  if (installation.db.dialect !== 'postgres') {
    return { check: 'clock', ok: true, detail: 'SQLite: one host, one clock' };
  }
  // Each reading is taken between two local readings; the midpoint is the estimate (± half the round trip).
  const skews: Array<{ who: string; ms: number }> = [];
  const t0 = clock();
  const dbNow = Number(
    (await sql<{ now: string | number }>`select ${DB_NOW_MS} as now`.execute(installation.db.kysely)).rows[0]
      ?.now,
  );
  const t1 = clock();
  skews.push({ who: 'this host', ms: Math.round((t0 + t1) / 2 - dbNow) });
  for (const i of live) skews.push({ who: `${i.host} pid ${i.pid}`, ms: i.skewMs });
  if (redis) {
    // Redis's own clock, against this host's and so against the database's.
    const r0 = clock();
    const [seconds, micros] = (await redis.time()) as [string | number, string | number];
    const r1 = clock();
    const redisNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const hostVsDb = skews[0]?.ms ?? 0;
    skews.push({ who: 'redis', ms: Math.round(redisNow - (r0 + r1) / 2 + hostVsDb) });
  }
  const worst = skews.reduce((a, b) => (Math.abs(b.ms) > Math.abs(a.ms) ? b : a));
  const instanceSkews = live.map((i) => i.skewMs);
  const spread = instanceSkews.length > 1 ? Math.max(...instanceSkews) - Math.min(...instanceSkews) : 0;
  const largest = Math.max(Math.abs(worst.ms), spread);
  const listed = skews.map((s) => `${s.who} ${signed(s.ms)}`).join(', ');
  const between = live.length > 1 ? `; between instances ${spread} ms` : '';
  const detail = `against the database: ${listed}${between} (warn above ${CLOCK_WARN_MS} ms, fail above ${CLOCK_FAIL_MS} ms)`;
  if (largest > CLOCK_FAIL_MS)
    return { check: 'clock', ok: false, detail: `skew too large: ${detail}; synchronise the clocks (NTP)` };
  if (largest > CLOCK_WARN_MS) return { check: 'clock', ok: true, warning: true, detail: `skew: ${detail}` };
  return { check: 'clock', ok: true, detail };
}

function signed(ms: number): string {
  return `${ms >= 0 ? '+' : ''}${ms} ms`;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
