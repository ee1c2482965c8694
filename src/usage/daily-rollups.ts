// Keeps the daily usage table cut in the reporting timezone. The table holds the 15-minute rollups
// summed per day of ONE zone, named in meta; when `tollgate serve` starts with another zone (or the
// table has never been filled), it is rebuilt from the rollups in one write transaction, before the
// gateway's ledger (which adds to it in that zone) takes traffic. A ledger created without a zone
// (tests, CLI tools) adds UTC days, so the table agrees with `ensureDailyRollups(db, 'UTC')`.
import { sql } from 'kysely';
import type { Db } from '../db/connect.js';
import { writeTransaction } from '../db/tx.js';
import { readMeta, writeMeta } from '../install/meta.repo.js';
import { dayOfBucket } from './rollup-batch.js';
import { ROLLUP_SUMS } from './sqlite-batch.js';

/** The meta key naming the zone the daily usage table is cut in (absent: the table is not usable). */
export const DAILY_TIMEZONE_META = 'usage_daily_timezone';

/** Bucket → day pairs per INSERT into the mapping table (2 parameters each, under SQLite's limit). */
const MAP_CHUNK = 400;

/** The zone the daily usage table is cut in, or null when it has not been built. */
export function dailyTimeZone(db: Db): Promise<string | null> {
  return readMeta(db, DAILY_TIMEZONE_META);
}

/**
 * Makes the daily usage table hold the rollups summed per day of `timeZone`. Nothing to do when it
 * already does; otherwise deletes it and rebuilds it from usage_rollups: each distinct bucket (tens of
 * thousands a year) is mapped to its day start here, the mapping goes into a temporary table, and one
 * `insert … select … join … group by` sums the rollups into days. Returns whether it rebuilt.
 */
export async function ensureDailyRollups(db: Db, timeZone: string): Promise<boolean> {
  if ((await dailyTimeZone(db)) === timeZone) return false;
  return writeTransaction(db, async (tx) => {
    const stored = await tx
      .selectFrom('meta')
      .select('value')
      .where('key', '=', DAILY_TIMEZONE_META)
      .executeTakeFirst();
    if (stored?.value === timeZone) return false;
    await tx.deleteFrom('usage_daily').execute();
    const temp = db.dialect === 'postgres' ? sql`temporary` : sql`temp`;
    await sql`drop table if exists usage_daily_map`.execute(tx);
    await sql`create ${temp} table usage_daily_map (bucket bigint primary key, day bigint not null)`.execute(
      tx,
    );
    const buckets = await tx
      .selectFrom('usage_rollups')
      .select('bucket')
      .distinct()
      .orderBy('bucket')
      .execute();
    const dayOf = dayOfBucket(timeZone);
    for (let i = 0; i < buckets.length; i += MAP_CHUNK) {
      const values = buckets.slice(i, i + MAP_CHUNK).map(({ bucket }) => {
        const b = Number(bucket);
        return sql`(${b}, ${dayOf(b)})`;
      });
      await sql`insert into usage_daily_map (bucket, day) values ${sql.join(values)}`.execute(tx);
    }
    // The id columns in usage_daily's primary-key order, so the sums go in in the table's own order.
    const ids = sql.raw('r.team_id, r.user_id, r.key_id, r.model, r.credential_id');
    const sums = sql.raw(ROLLUP_SUMS.map((c) => `sum(r.${c})`).join(', '));
    await sql`insert into usage_daily (day, team_id, user_id, key_id, model, credential_id,
        ${sql.raw(ROLLUP_SUMS.join(', '))})
      select m.day, ${ids}, ${sums}
      from usage_rollups r join usage_daily_map m on m.bucket = r.bucket
      group by m.day, ${ids}`.execute(tx);
    await sql`drop table usage_daily_map`.execute(tx);
    await writeMeta(tx, DAILY_TIMEZONE_META, timeZone);
    return true;
  });
}
