// Anthropic's usage and cost reports as imported by `tollgate anthropic sync`: one row per report line,
// keyed by the line's identity so a second import of the same days overwrites, never duplicates. An
// absent workspace is stored as '' (a primary key column cannot be null). Cost is integer micro-USD
// beside the exact cents string Anthropic sent.
import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../connect.js';

type MigrationDb = Kysely<unknown>;

export function anthropicReportsMigration(_dialect: Dialect) {
  return {
    async up(db: MigrationDb): Promise<void> {
      await sql`create table anthropic_usage_report (
        day text not null,
        api_key_id text not null,
        workspace_id text not null,
        model text not null,
        uncached_input_tokens bigint not null,
        cache_write_5m_tokens bigint not null,
        cache_write_1h_tokens bigint not null,
        cache_read_tokens bigint not null,
        output_tokens bigint not null,
        web_search_requests bigint not null,
        primary key (day, api_key_id, workspace_id, model)
      )`.execute(db);
      await sql`create table anthropic_cost_report (
        day text not null,
        workspace_id text not null,
        description text not null,
        model text,
        token_type text,
        amount_cents text not null,
        amount_micro bigint not null,
        currency text not null,
        primary key (day, workspace_id, description)
      )`.execute(db);
    },
  };
}
