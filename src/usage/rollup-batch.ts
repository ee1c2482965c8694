// The rollup rows one ledger commit adds to: its Messages records summed per 15-minute bucket and
// rollup key (key, model, credential, user, team). Pure, and cheap on the commit path: records are
// grouped by key id in a Map, then matched against that key's few rows field by field, so no string
// is built per record. '' stands for "none" in the key columns (they are a primary key). The same rows
// folded per day of the reporting timezone are what the commit adds to the daily table.
import type { UsageDailyTable, UsageRecordTable, UsageRollupTable } from '../db/schema.js';
import { dayStartOf } from '../lib/timezone.js';

export type RollupDelta = UsageRollupTable;
export type DailyDelta = UsageDailyTable;

const HOUR = 3_600_000;

/** Rollup granularity: 15 minutes, so every real timezone's days are whole buckets. */
export const ROLLUP_BUCKET_MS = 900_000;

/** The 15-minute bucket (its start, epoch ms) an instant falls in. */
export function bucketOf(at: number): number {
  return at - (at % ROLLUP_BUCKET_MS);
}

export function rollupDeltas(records: readonly UsageRecordTable[]): RollupDelta[] {
  const byKey = new Map<string, RollupDelta[]>();
  const out: RollupDelta[] = [];
  for (const r of records) {
    if (r.endpoint !== 'messages') continue;
    const bucket = bucketOf(r.at);
    const model = r.model ?? '';
    const credential = r.credential_id ?? '';
    const team = r.team_id ?? '';
    let rows = byKey.get(r.key_id);
    if (!rows) {
      rows = [];
      byKey.set(r.key_id, rows);
    }
    let row: RollupDelta | undefined;
    for (const candidate of rows) {
      if (
        candidate.bucket === bucket &&
        candidate.model === model &&
        candidate.credential_id === credential &&
        candidate.user_id === r.user_id &&
        candidate.team_id === team
      ) {
        row = candidate;
        break;
      }
    }
    const ok = r.status >= 200 && r.status < 300 ? 1 : 0;
    if (!row) {
      row = {
        bucket,
        key_id: r.key_id,
        model,
        credential_id: credential,
        user_id: r.user_id,
        team_id: team,
        requests: ok,
        errors: 1 - ok,
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        cache_write_5m_tokens: r.cache_write_5m_tokens,
        cache_write_1h_tokens: r.cache_write_1h_tokens,
        cache_read_tokens: r.cache_read_tokens,
        web_search_requests: r.web_search_requests,
        cost_micro: r.cost_micro,
        saved_micro: r.saved_micro,
        estimated: r.estimated,
      };
      rows.push(row);
      out.push(row);
      continue;
    }
    row.requests += ok;
    row.errors += 1 - ok;
    row.input_tokens += r.input_tokens;
    row.output_tokens += r.output_tokens;
    row.cache_write_5m_tokens += r.cache_write_5m_tokens;
    row.cache_write_1h_tokens += r.cache_write_1h_tokens;
    row.cache_read_tokens += r.cache_read_tokens;
    row.web_search_requests += r.web_search_requests;
    row.cost_micro += r.cost_micro;
    row.saved_micro += r.saved_micro;
    row.estimated += r.estimated;
  }
  return out;
}

/**
 * Maps a bucket to the start of its day in `timeZone`, remembering the last day seen: a ledger's
 * commits fall in the same day for hours, so Intl is asked about twice a day.
 */
export function dayOfBucket(timeZone: string): (bucket: number) => number {
  let start = 0;
  let end = 0; // [start, end) is the remembered day; empty at first
  return (bucket) => {
    if (bucket >= start && bucket < end) return start;
    start = dayStartOf(bucket, timeZone);
    // Days last 23 to 25 hours: 36 hours on is inside the next one.
    end = dayStartOf(start + 36 * HOUR, timeZone);
    return start;
  };
}

/** The rollup deltas summed per day (`dayOf` maps a bucket to its day start), one row per daily key. */
export function dailyDeltas(
  rollups: readonly RollupDelta[],
  dayOf: (bucket: number) => number,
): DailyDelta[] {
  const byKey = new Map<string, DailyDelta[]>();
  const out: DailyDelta[] = [];
  for (const r of rollups) {
    const day = dayOf(r.bucket);
    let rows = byKey.get(r.key_id);
    if (!rows) {
      rows = [];
      byKey.set(r.key_id, rows);
    }
    let row: DailyDelta | undefined;
    for (const candidate of rows) {
      if (
        candidate.day === day &&
        candidate.model === r.model &&
        candidate.credential_id === r.credential_id &&
        candidate.user_id === r.user_id &&
        candidate.team_id === r.team_id
      ) {
        row = candidate;
        break;
      }
    }
    if (!row) {
      const { bucket: _bucket, ...rest } = r;
      row = { ...rest, day };
      rows.push(row);
      out.push(row);
      continue;
    }
    row.requests += r.requests;
    row.errors += r.errors;
    row.input_tokens += r.input_tokens;
    row.output_tokens += r.output_tokens;
    row.cache_write_5m_tokens += r.cache_write_5m_tokens;
    row.cache_write_1h_tokens += r.cache_write_1h_tokens;
    row.cache_read_tokens += r.cache_read_tokens;
    row.web_search_requests += r.web_search_requests;
    row.cost_micro += r.cost_micro;
    row.saved_micro += r.saved_micro;
    row.estimated += r.estimated;
  }
  return out;
}
