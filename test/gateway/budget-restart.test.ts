// Spend survives a restart: a new gateway process starts its budget counters from the stored daily
// spend (months and all-time are sums of days), so a restart cannot reopen an exhausted budget.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scopeLimits } from '../../src/budgets/budget-book.js';
import { createGateway } from '../../src/gateway/gateway.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

describe('budget counters after a restart', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await h.orgCredential();
  });
  afterAll(() => h.close());

  it('start from what the ledger recorded, for every scope and period', async () => {
    await h.services.teams.add(h.admin, { name: 'ops' });
    await h.services.users.add(h.admin, { name: 'ann', team: 'ops', monthlyBudgetMicro: null });
    const key = (await h.services.keys.issue(h.admin, { user: 'ann', policy: {} })).key;
    for (let i = 0; i < 5; i++) await h.client(key).messages.create(PARAMS);
    await h.gateway.deps.ledger.drain();
    const rows = await h.installation.db.kysely
      .selectFrom('usage_records')
      .selectAll()
      .where('status', '=', 200)
      .execute();
    const spent = rows.reduce((s, r) => s + r.cost_micro, 0);
    expect(spent).toBeGreaterThan(0);

    const restarted = createGateway({ installation: h.installation, clock: Date.now }, h.config);
    const ann = await h.services.users.get('ann');
    const team = await h.services.teams.get('ops');
    const keyId = rows[0]?.key_id ?? '';
    const now = Date.now();
    const scopes = [
      scopeLimits('key', keyId, 'k', {}),
      scopeLimits('user', ann.id, 'u', {}),
      scopeLimits('team', team.id, 't', {}),
      scopeLimits('org', h.installation.orgId, 'o', {}),
    ];
    await restarted.deps.budgets.prepare(scopes, now);
    for (const s of scopes) {
      for (const period of ['day', 'month', 'total'] as const) {
        expect(restarted.deps.budgets.snapshot(s.scope, s.id, period, now), `${s.scope} ${period}`).toEqual({
          spent,
          reserved: 0,
        });
      }
    }
    await restarted.close();
  });
});
