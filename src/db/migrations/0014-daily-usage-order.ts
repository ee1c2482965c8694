// Daily usage clustered the way reports group it: the primary key becomes (day, team_id, user_id,
// key_id, model, credential_id), so "per team", "per user", "per key" and "per key and user" over a
// range of days are each a run of the clustered order: SQLite aggregates them as it reads, with no
// sort of every row of the range (the overview and the usage explorer's busiest views). The rows are
// copied as they are, so the zone named in meta stays true and nothing needs rebuilding. On PostgreSQL,
// which hashes rather than sorts, the same grouping gets the statistics its planner needs instead.
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../connect.js';

// Migrations run against the schema as it was then, so they are not typed against today's tables.
type MigrationDb = Kysely<unknown>;

const COLUMNS = `day, key_id, model, credential_id, user_id, team_id, requests, errors, input_tokens,
  output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, web_search_requests,
  cost_micro, saved_micro, estimated`;

export function dailyUsageOrderMigration(dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await sql`create table usage_daily_next (
        day bigint not null,
        key_id text not null,
        model text not null,
        credential_id text not null,
        user_id text not null,
        team_id text not null,
        requests bigint not null,
        errors bigint not null,
        input_tokens bigint not null,
        output_tokens bigint not null,
        cache_write_5m_tokens bigint not null,
        cache_write_1h_tokens bigint not null,
        cache_read_tokens bigint not null,
        web_search_requests bigint not null,
        cost_micro bigint not null,
        saved_micro bigint not null,
        estimated bigint not null,
        constraint usage_daily_next_pkey primary key (day, team_id, user_id, key_id, model, credential_id)
      )${sql.raw(dialect === 'sqlite' ? ' without rowid' : '')}`.execute(db);
      await sql`insert into usage_daily_next (${sql.raw(COLUMNS)})
        select ${sql.raw(COLUMNS)} from usage_daily`.execute(db);
      await sql`drop table usage_daily`.execute(db);
      await sql`alter table usage_daily_next rename to usage_daily`.execute(db);
      if (dialect === 'postgres') {
        await sql`alter table usage_daily rename constraint usage_daily_next_pkey to usage_daily_pkey`.execute(
          db,
        );
        // PostgreSQL's planner takes team, user and key for independent columns and expects nearly one
        // group per row for "per key and user" (13,000 where there are 300), so it sorts every row
        // (spilling to disk) instead of hashing a few hundred groups. A key belongs to one user and a
        // user to one team: these statistics (filled by ANALYZE, which autovacuum runs) tell it so.
        for (const table of ['usage_daily', 'usage_rollups'])
          await sql`create statistics ${sql.id(`${table}_owners`)} (ndistinct, dependencies)
            on team_id, user_id, key_id from ${sql.table(table)}`.execute(db);
      }
    },
  };
}
