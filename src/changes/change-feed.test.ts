import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgSchema, PG_URL, type PgSchema } from '../../test/helpers/pg.js';
import { type Db, openDatabase } from '../db/connect.js';
import { migrateToLatest } from '../db/migrate.js';
import { writeTransaction } from '../db/tx.js';
import { changesSince, recordChanges } from './change-feed.js';

const row = (target: string) => ({ kind: 'key' as const, target_id: target, at: 1 });

describe.skipIf(!PG_URL)('feed rows on PostgreSQL become visible in seq order', () => {
  let schema: PgSchema;
  let db: Db;
  beforeAll(async () => {
    schema = await createPgSchema(PG_URL as string);
    db = openDatabase({ kind: 'postgres', url: schema.url });
    await migrateToLatest(db);
  });
  afterAll(async () => {
    await db?.close();
    await schema?.drop();
  });

  /** Opens a transaction that has written `target`'s row and holds it open until `release` is called. */
  function holdOpen(
    target: string,
    write: (tx: Parameters<Parameters<typeof writeTransaction>[1]>[0]) => Promise<void>,
  ) {
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let wrote = () => {};
    const written = new Promise<void>((r) => {
      wrote = r;
    });
    const done = writeTransaction(db, async (tx) => {
      await write(tx);
      wrote();
      await gate;
    });
    return { release, written, done, target };
  }

  it('a later writer waits for an earlier one to commit, so a reader never skips a seq', async () => {
    const first = holdOpen('a', (tx) => recordChanges(tx, 'postgres', [row('a')]));
    await first.written;
    let secondDone = false;
    const second = writeTransaction(db, (tx) => recordChanges(tx, 'postgres', [row('b')])).then(() => {
      secondDone = true;
    });
    await new Promise((r) => setTimeout(r, 200));
    // The second writer is held behind the first, so no reader can see b without a.
    expect(secondDone).toBe(false);
    expect(await changesSince(db.kysely, 0)).toEqual([]);
    first.release();
    await first.done;
    await second;
    const rows = await changesSince(db.kysely, 0);
    expect(rows.map((r) => r.target_id)).toEqual(['a', 'b']);
    expect(Number(rows[0]?.seq)).toBeLessThan(Number(rows[1]?.seq));
  });

  it("a bulk change writes all its rows, in order, past one statement's size", async () => {
    const [{ seq: before } = { seq: 0 }] = (await changesSince(db.kysely, 0, 100_000)).slice(-1);
    const many = Array.from({ length: 2500 }, (_, i) => row(`bulk-${i}`));
    await writeTransaction(db, (tx) => recordChanges(tx, 'postgres', many));
    const seen = await changesSince(db.kysely, Number(before), 5000);
    expect(seen.map((r) => r.target_id)).toEqual(many.map((r) => r.target_id));
  });

  it('control: a plain insert beside an open writer commits first with a higher seq (the skip it prevents)', async () => {
    const [{ seq: before } = { seq: 0 }] = (await changesSince(db.kysely, 0, 100_000)).slice(-1);
    const first = holdOpen('c', (tx) => recordChanges(tx, 'postgres', [row('c')]));
    await first.written;
    await db.kysely.insertInto('change_log').values(row('d')).execute();
    // A reader now sees d (seq n+2) but not c (seq n+1): keeping only the highest seq read, it would
    // never read c.
    const seen = await changesSince(db.kysely, Number(before));
    expect(seen.map((r) => r.target_id)).toEqual(['d']);
    first.release();
    await first.done;
    const all = await changesSince(db.kysely, Number(before));
    expect(all.map((r) => r.target_id)).toEqual(['c', 'd']);
  });
});
