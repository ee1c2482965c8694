// PostgreSQL connections start without parallel workers (Tollgate's statements are too small to gain
// from them), unless the URL's own options name the setting.

import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createPgSchema, PG_URL, type PgSchema } from '../../test/helpers/pg.js';
import { type Db, openConnections, openDatabase } from './connect.js';

describe.skipIf(!PG_URL)('PostgreSQL sessions', () => {
  let db: Db | null = null;
  let schema: PgSchema | null = null;
  afterEach(async () => {
    await db?.close();
    await schema?.drop();
    db = null;
    schema = null;
  });

  async function workers(url: string): Promise<string[]> {
    const opened = openDatabase({ kind: 'postgres', url });
    db = opened;
    // Several at once, so the pool opens several connections: each gets the setting.
    const answers = await Promise.all(
      Array.from({ length: 4 }, () =>
        sql<{ max_parallel_workers_per_gather: string }>`show max_parallel_workers_per_gather`.execute(
          opened.kysely,
        ),
      ),
    );
    return answers.map((a) => a.rows[0]?.max_parallel_workers_per_gather ?? '');
  }

  it('run without parallel workers on every pooled connection', async () => {
    schema = await createPgSchema(PG_URL ?? '');
    expect(await workers(schema.url)).toEqual(['0', '0', '0', '0']);
  });

  it('keep the value the URL options give (positive control: the server default is not 0 here)', async () => {
    schema = await createPgSchema(PG_URL ?? '');
    const url = new URL(schema.url);
    url.searchParams.set(
      'options',
      `${url.searchParams.get('options')} -c max_parallel_workers_per_gather=3`,
    );
    expect(await workers(url.toString())).toEqual(['3', '3', '3', '3']);
  });

  it('opens the asked number of connections at start; a single query alone opens one', async () => {
    schema = await createPgSchema(PG_URL ?? '');
    const name = `tg-${randomBytes(4).toString('hex')}`;
    const url = new URL(schema.url);
    url.searchParams.set('application_name', name);
    const opened = openDatabase({ kind: 'postgres', url: url.toString() });
    db = opened;
    const count = async () =>
      Number(
        (
          await sql<{
            n: string;
          }>`select count(*) as n from pg_stat_activity where application_name = ${name}`.execute(
            opened.kysely,
          )
        ).rows[0]?.n,
      );
    expect(await count()).toBe(1);
    await openConnections(opened, 5);
    expect(await count()).toBe(5);
  });
});
