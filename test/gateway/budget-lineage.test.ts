// A key's budget belongs to its lineage: `key rotate` (with or without grace) yields a key that shares
// one budget and its spend with its predecessors — the limit, the spend loaded from the ledger after a
// restart, and the reservations in flight. Usage still names the key that served each request.
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway } from '../../src/gateway/gateway.js';
import { parseUsd } from '../../src/lib/money.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { createPgSchema, PG_URL } from '../helpers/pg.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 40,
  messages: [{ role: 'user' as const, content: 'lineage [[fake output_tokens=40]]' }],
};

async function spentBy(h: Harness, keyIds: readonly string[]): Promise<number> {
  await h.gateway.deps.ledger.drain();
  const rows = await h.installation.db.kysely
    .selectFrom('usage_records')
    .select(['key_id', 'cost_micro'])
    .where('endpoint', '=', 'messages')
    .execute();
  return rows.filter((r) => keyIds.includes(r.key_id)).reduce((s, r) => s + r.cost_micro, 0);
}

/** The budget left after this request's reservation, as the gateway reports it. */
async function remaining(h: Harness, key: string): Promise<number> {
  const { response } = await h.client(key).messages.create(PARAMS).withResponse();
  const header = response.headers.get('x-tollgate-budget-remaining-usd');
  if (header === null) throw new Error('no remaining-budget header');
  return parseUsd(header, 'remaining');
}

/** Cost of one request, measured on a throw-away installation. */
async function unitCost(): Promise<number> {
  const probe = await startHarness();
  try {
    await probe.orgCredential();
    await probe.client(await probe.key()).messages.create(PARAMS);
    const row = await probe.installation.db.kysely
      .selectFrom('usage_records')
      .select('cost_micro')
      .executeTakeFirstOrThrow();
    return row.cost_micro;
  } finally {
    await probe.close();
  }
}

const databases: Array<[string, () => Promise<{ env: Record<string, string>; drop: () => Promise<void> }>]> =
  [['sqlite', async () => ({ env: {}, drop: async () => {} })]];
const pgUrl = PG_URL;
if (pgUrl) {
  databases.push([
    'postgres',
    async () => {
      const schema = await createPgSchema(pgUrl);
      return { env: { TOLLGATE_DATABASE_URL: schema.url }, drop: schema.drop };
    },
  ]);
}

describe.each(databases)('budgets follow the key lineage (%s)', (_name, database) => {
  let h: Harness;
  let drop: () => Promise<void> = async () => {};
  afterEach(async () => {
    await h.close();
    await drop();
  });
  async function start(): Promise<Harness> {
    const opened = await database();
    drop = opened.drop;
    return startHarness({ env: opened.env });
  }

  it('a rotated key continues its predecessor’s spend; an unrelated key of the same user does not', async () => {
    h = await start();
    await h.orgCredential();
    const limit = 1_000_000;
    await h.services.users.add(h.admin, { name: 'ann', monthlyBudgetMicro: null });
    const a = await h.services.keys.issue(h.admin, { user: 'ann', policy: { monthlyBudgetMicro: limit } });
    const other = await h.services.keys.issue(h.admin, {
      user: 'ann',
      policy: { monthlyBudgetMicro: limit },
    });
    for (let i = 0; i < 4; i++) await h.client(a.key).messages.create(PARAMS);
    const spentA = await spentBy(h, [a.id]);
    expect(spentA).toBeGreaterThan(0);

    const b = await h.services.keys.rotate(h.admin, a.id, 3600_000);
    await h.refresh();
    expect(b.lineageId).toBe(a.id);
    expect(b.policy.monthlyBudgetMicro).toBe(limit);

    // Positive control: the unrelated key's first request leaves limit − its worst case.
    const fresh = await remaining(h, other.key);
    const worstCase = limit - fresh;
    expect(worstCase).toBeGreaterThan(0);
    // Key B starts where A left off: limit − A's spend − this request's worst case.
    expect(await remaining(h, b.key)).toBe(fresh - spentA);
    // A (still within its grace) sees B's spend too.
    const spentAB = await spentBy(h, [a.id, b.id]);
    expect(await remaining(h, a.key)).toBe(limit - spentAB - worstCase);

    // Usage records still name the key that served each request.
    await h.gateway.deps.ledger.drain();
    const byKey = await h.installation.db.kysely
      .selectFrom('usage_records')
      .select('key_id')
      .where('endpoint', '=', 'messages')
      .execute();
    expect(new Set(byKey.map((r) => r.key_id))).toEqual(new Set([a.id, b.id, other.id]));

    // A restarted gateway on the same database loads the lineage's spend, whichever key comes first.
    const restarted = createGateway({ installation: h.installation, clock: Date.now }, h.config);
    try {
      const entry = await restarted.deps.keys.lookup(b.key);
      if (!entry) throw new Error('key B unknown after restart');
      const now = Date.now();
      await restarted.deps.budgets.prepare([entry.budget], now);
      const total = await spentBy(h, [a.id, b.id]);
      expect(restarted.deps.budgets.snapshot('key', entry.budget.id, 'month', now)).toEqual({
        spent: total,
        reserved: 0,
      });
      const control = await restarted.deps.keys.lookup(other.key);
      if (!control) throw new Error('unrelated key unknown after restart');
      await restarted.deps.budgets.prepare([control.budget], now);
      expect(restarted.deps.budgets.snapshot('key', control.budget.id, 'month', now).spent).toBe(
        await spentBy(h, [other.id]),
      );
    } finally {
      await restarted.close();
    }
  });

  it('during a grace period the old and the new key together stay within one budget', async () => {
    const K = 20;
    const unit = await unitCost();
    const limit = K * unit;
    h = await start();
    await h.orgCredential();
    await h.services.users.add(h.admin, { name: 'bob', monthlyBudgetMicro: null });
    const a = await h.services.keys.issue(h.admin, { user: 'bob', policy: { monthlyBudgetMicro: limit } });
    const control = await h.services.keys.issue(h.admin, {
      user: 'bob',
      policy: { monthlyBudgetMicro: limit },
    });
    const b = await h.services.keys.rotate(h.admin, a.id, 3600_000);
    await h.refresh();

    const fire = (key: string) =>
      Array.from({ length: 60 }, () =>
        h
          .client(key)
          .messages.create(PARAMS)
          .then(() => key),
      );
    const results = await Promise.allSettled([...fire(a.key), ...fire(b.key)]);
    const admitted = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    expect(admitted.length).toBeGreaterThan(0);
    expect(admitted.length).toBeLessThanOrEqual(K);
    for (const r of refused) expect(r.reason).toMatchObject({ status: 429 });
    expect(await spentBy(h, [a.id, b.id])).toBeLessThanOrEqual(limit);

    // Then one at a time, alternating keys, until the lineage refuses: still at most K in all.
    let more = 0;
    for (let i = 0; i <= K; i++) {
      const key = i % 2 === 0 ? a.key : b.key;
      const answer = await h
        .client(key)
        .messages.create(PARAMS)
        .then(
          () => 'ok',
          (error: unknown) => error,
        );
      if (answer !== 'ok') {
        expect(answer).toMatchObject({ status: 429 });
        break;
      }
      more++;
    }
    expect(admitted.length + more).toBeLessThanOrEqual(K);
    expect(await spentBy(h, [a.id, b.id])).toBeLessThanOrEqual(limit);
    // Positive control: the same burst on an unrelated key of the same user is admitted on its own
    // budget, while the lineage has nothing left.
    await expect(h.client(b.key).messages.create(PARAMS)).rejects.toMatchObject({ status: 429 });
    const own = await Promise.allSettled(fire(control.key));
    const ownAdmitted = own.filter((r) => r.status === 'fulfilled').length;
    expect(ownAdmitted).toBeGreaterThan(0);
    expect(ownAdmitted).toBeLessThanOrEqual(K);
    expect(await spentBy(h, [control.id])).toBeLessThanOrEqual(limit);
  });

  it('a rotation without grace, and a budget set through any key of the lineage, apply to the lineage', async () => {
    h = await start();
    await h.orgCredential();
    await h.services.users.add(h.admin, { name: 'cy', monthlyBudgetMicro: null });
    const a = await h.services.keys.issue(h.admin, { user: 'cy', policy: { monthlyBudgetMicro: 5_000_000 } });
    await h.client(a.key).messages.create(PARAMS);
    const b = await h.services.keys.rotate(h.admin, a.id, null);
    const c = await h.services.keys.rotate(h.admin, b.id, null);
    expect(c.lineageId).toBe(a.id);
    // Set through the revoked first key: the live key C is bound by it.
    const spent = await spentBy(h, [a.id]);
    await h.services.keys.setKeyBudget(h.admin, a.id, 'month', spent);
    await h.refresh();
    expect((await h.services.keys.show(c.id)).policy.monthlyBudgetMicro).toBe(spent);
    await expect(h.client(c.key).messages.create(PARAMS)).rejects.toMatchObject({ status: 429 });
    // Raised through the live key, the whole lineage gets the room back.
    await h.services.keys.setKeyBudget(h.admin, c.id, 'month', spent + 1_000_000);
    await h.refresh();
    expect((await h.services.keys.show(a.id)).policy.monthlyBudgetMicro).toBe(spent + 1_000_000);
    await h.client(c.key).messages.create(PARAMS);
  });
});
