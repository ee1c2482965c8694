import { type Kysely, type Migration, Migrator } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createPgSchema, PG_URL, type PgSchema } from '../../../test/helpers/pg.js';
import { type DatabaseTarget, type Db, openDatabase } from '../connect.js';
import { ensureMigrationTables, migrateToLatest, migrationsFor } from '../migrate.js';
import type { Database, GatewayKeyTable } from '../schema.js';
import { lineagesOf } from './0008-key-lineage.js';

type OldTables = Omit<Database, 'gateway_keys'> & { gateway_keys: Omit<GatewayKeyTable, 'lineage_id'> };

describe('lineagesOf', () => {
  it('maps every rotated key to the first key of its chain, and leaves first keys out', () => {
    const keys = [
      { id: 'c', rotated_to: null },
      { id: 'a', rotated_to: 'b' },
      { id: 'b', rotated_to: 'c' },
      { id: 'd', rotated_to: null },
    ];
    expect(Object.fromEntries(lineagesOf(keys))).toEqual({ b: 'a', c: 'a' });
  });

  it('terminates on a corrupt cycle', () => {
    const keys = [
      { id: 'x', rotated_to: 'y' },
      { id: 'y', rotated_to: 'x' },
    ];
    expect(lineagesOf(keys).size).toBeLessThanOrEqual(2);
  });
});

const targets: Array<[string, () => Promise<{ target: DatabaseTarget; drop: () => Promise<void> }>]> = [
  ['sqlite', async () => ({ target: { kind: 'sqlite', path: ':memory:' }, drop: async () => {} })],
];
const pgUrl = PG_URL;
if (pgUrl) {
  targets.push([
    'postgres',
    async () => {
      const schema: PgSchema = await createPgSchema(pgUrl);
      return { target: { kind: 'postgres', url: schema.url }, drop: schema.drop };
    },
  ]);
}

describe.each(targets)('migration 0008 on %s', (_name, open) => {
  let db: Db | null = null;
  let drop: () => Promise<void> = async () => {};
  afterEach(async () => {
    await db?.close();
    await drop();
  });

  it('backfills lineages from rotated_to chains and keeps one budget row per lineage (the newest)', async () => {
    const opened = await open();
    drop = opened.drop;
    db = openDatabase(opened.target);
    const all = migrationsFor(db.dialect);
    const before: Record<string, Migration> = {};
    for (const [name, m] of Object.entries(all)) if (name < '0008') before[name] = m;
    await ensureMigrationTables(db);
    const migrator = new Migrator({
      db: db.kysely,
      provider: { getMigrations: async () => before },
      migrationTableName: 'tollgate_migrations',
      migrationLockTableName: 'tollgate_migrations_lock',
    });
    const { error } = await migrator.migrateToLatest();
    expect(error).toBeUndefined();

    // The tables as an old Tollgate wrote them: no lineage_id yet.
    const k = db.kysely as unknown as Kysely<OldTables>;
    await k
      .insertInto('users')
      .values({
        id: 'usr_1',
        name: 'ann',
        email: null,
        role: 'member',
        team_id: null,
        created_at: 1,
        removed_at: null,
      })
      .execute();
    const key = (id: string, rotatedTo: string | null) => ({
      id,
      user_id: 'usr_1',
      name: null,
      hash: `h-${id}`,
      hint: 'tg_…',
      status: 'active' as const,
      models: null,
      tools: null,
      max_tokens: null,
      max_cost_per_request_micro: null,
      rpm: null,
      input_tpm: null,
      output_tpm: null,
      concurrency: null,
      environment: null,
      credential_id: null,
      scopes: '["inference"]',
      expires_at: null,
      created_at: 1,
      created_by: 'test',
      revoked_at: null,
      rotated_to: rotatedTo,
      last_used_at: null,
    });
    await k
      .insertInto('gateway_keys')
      .values([key('key_a', 'key_b'), key('key_b', 'key_c'), key('key_c', null), key('key_d', null)])
      .execute();
    const budget = (scope_id: string, period: 'month' | 'day', limit_micro: number, updated_at: number) => ({
      scope_type: 'key' as const,
      scope_id,
      period,
      limit_micro,
      updated_at,
    });
    await k
      .insertInto('budgets')
      .values([
        budget('key_a', 'month', 100, 10),
        budget('key_b', 'month', 100, 20),
        budget('key_c', 'month', 300, 30),
        budget('key_a', 'day', 7, 40),
        budget('key_c', 'day', 5, 35),
        budget('key_d', 'month', 900, 1),
      ])
      .execute();

    await migrateToLatest(db);

    const keys = await db.kysely
      .selectFrom('gateway_keys')
      .select(['id', 'lineage_id'])
      .orderBy('id')
      .execute();
    expect(keys).toEqual([
      { id: 'key_a', lineage_id: 'key_a' },
      { id: 'key_b', lineage_id: 'key_a' },
      { id: 'key_c', lineage_id: 'key_a' },
      { id: 'key_d', lineage_id: 'key_d' },
    ]);
    const budgets = await db.kysely
      .selectFrom('budgets')
      .select(['scope_id', 'period', 'limit_micro'])
      .where('scope_type', '=', 'key')
      .orderBy('scope_id')
      .orderBy('period')
      .execute();
    expect(budgets).toEqual([
      { scope_id: 'key_a', period: 'day', limit_micro: 7 },
      { scope_id: 'key_a', period: 'month', limit_micro: 300 },
      { scope_id: 'key_d', period: 'month', limit_micro: 900 },
    ]);
  });
});
