// A throw-away PostgreSQL schema per test file, on the server named by TOLLGATE_TEST_DATABASE_URL.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_URL = process.env.TOLLGATE_TEST_DATABASE_URL;

export interface PgSchema {
  /** A connection URL whose search_path is the new schema. */
  url: string;
  drop(): Promise<void>;
}

export async function createPgSchema(base: string): Promise<PgSchema> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create schema ${name}`);
  await admin.end();
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${name}`);
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: base });
      await client.connect();
      await client.query(`drop schema if exists ${name} cascade`);
      await client.end();
    },
  };
}
