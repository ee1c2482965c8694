// Keys and credentials older than security.key_max_age_days, looked for at start and then periodically
// (ages change with time, not with requests). One alert per key, and per credential and secret version
// (a rotation starts a new age). The same rules as `tollgate status` and the overview: active keys not
// already being rotated, active credentials counted from their last rotation.
import type { Db } from '../db/connect.js';
import type { NewAlert } from './alert-text.js';
import { credentialAgeAlert, keyAgeAlert } from './alert-text.js';

const DAY_MS = 86_400_000;

export interface AgeWatchDeps {
  readonly db: Db;
  readonly maxAgeDays: number;
  readonly raise: (alerts: readonly NewAlert[]) => Promise<number>;
}

/** Alerts for every key and credential past the age policy at `now` (conditions already raised included). */
export async function agedAlerts(deps: AgeWatchDeps, now: number): Promise<NewAlert[]> {
  const cutoff = now - deps.maxAgeDays * DAY_MS;
  const ageDays = (since: number) => Math.max(0, Math.floor((now - since) / DAY_MS));
  const keys = await deps.db.kysely
    .selectFrom('gateway_keys')
    .innerJoin('users', 'users.id', 'gateway_keys.user_id')
    .select([
      'gateway_keys.id',
      'gateway_keys.name',
      'gateway_keys.created_at',
      'gateway_keys.expires_at',
      'users.name as user',
    ])
    .where('gateway_keys.status', '=', 'active')
    .where('gateway_keys.rotated_to', 'is', null)
    .where('gateway_keys.created_at', '<', cutoff)
    .execute();
  const credentials = await deps.db.kysely
    .selectFrom('credentials')
    .select(['id', 'name', 'created_at', 'rotated_at'])
    .where('status', '=', 'active')
    .where('removed_at', 'is', null)
    .where('retired_from', 'is', null)
    .where((eb) => eb(eb.fn.coalesce('rotated_at', 'created_at'), '<', cutoff))
    .execute();
  return [
    ...keys
      .filter((k) => k.expires_at === null || Number(k.expires_at) > now)
      .map((k) => {
        const createdAt = Number(k.created_at);
        return keyAgeAlert(
          { id: k.id, name: k.name, user: k.user, createdAt },
          ageDays(createdAt),
          deps.maxAgeDays,
        );
      }),
    ...credentials.map((c) => {
      const since = Number(c.rotated_at ?? c.created_at);
      return credentialAgeAlert({ id: c.id, name: c.name, since }, ageDays(since), deps.maxAgeDays);
    }),
  ];
}

/** Raises the age alerts due at `now` that have not been raised before. */
export async function checkAges(deps: AgeWatchDeps, now: number): Promise<number> {
  return deps.raise(await agedAlerts(deps, now));
}
