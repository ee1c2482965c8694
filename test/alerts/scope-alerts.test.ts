// Budget alerts of the other scopes: a key's budget (its lineage: a rotated key continues it, and the
// crossing names the lineage) and the org's monthly cap from claude.max_monthly_spend_usd, which wins
// over a stored org row as the gateway enforces it; a team whose budget is far away raises nothing.
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { type Receiver, startReceiver, until } from './receiver.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'scope alerts [[fake output_tokens=20]]' }],
};
const FAST = { budgetDelayMs: 10, delivery: { backoffMs: 50, maxBackoffMs: 200, pollMs: 200 } };

/** Cost of one request, measured on a throw-away installation (the fake counts deterministically). */
async function unitCost(): Promise<number> {
  const probe = await startHarness();
  try {
    await probe.orgCredential();
    await probe.client(await probe.key()).messages.create(PARAMS);
    await probe.gateway.deps.ledger.drain();
    const row = await probe.installation.db.kysely
      .selectFrom('usage_records')
      .select('cost_micro')
      .executeTakeFirstOrThrow();
    return Number(row.cost_micro);
  } finally {
    await probe.close();
  }
}

describe('budget alerts of key lineages and the org cap', () => {
  let h: Harness | null = null;
  let receiver: Receiver | null = null;
  afterEach(async () => {
    await h?.close();
    await receiver?.close();
  });

  it('one POST per crossing for the key lineage and the configured org cap', async () => {
    const unit = await unitCost();
    receiver = await startReceiver();
    const r = receiver;
    // The org cap: 20 requests' worth (USD in the config, exact to the micro-USD).
    const cap = 20 * unit;
    h = await startHarness({
      env: {
        TOLLGATE_ALERTS_WEBHOOK_URL: r.url,
        TOLLGATE_CLAUDE_MAX_MONTHLY_SPEND_USD: (cap / 1e6).toFixed(6),
      },
      alerts: FAST,
    });
    await h.orgCredential();
    await h.services.teams.add(h.admin, { name: 'ops' });
    await h.services.users.add(h.admin, { name: 'ann', team: 'ops', monthlyBudgetMicro: null });
    const team = await h.services.teams.get('ops');
    await h.services.budgets.set(h.admin, { scope: 'team', id: team.id, name: 'ops' }, 'month', 1000 * unit);
    const a = await h.services.keys.issue(h.admin, {
      user: 'ann',
      name: 'ci',
      policy: { monthlyBudgetMicro: 10 * unit },
    });
    for (let i = 0; i < 3; i++) await h.client(a.key).messages.create(PARAMS);
    // Rotated: the new key continues the lineage's budget and spend.
    const b = await h.services.keys.rotate(h.admin, a.id, null);
    await h.refresh();
    for (let i = 0; i < 2; i++) await h.client(b.key).messages.create(PARAMS); // key lineage at 50 %
    await until(
      'the key POST',
      () => r.received.length,
      (n) => n === 1,
    );
    expect(r.received[0]?.body).toMatchObject({
      kind: 'budget',
      scope: 'key',
      id: a.id,
      period: 'month',
      threshold: 0.5,
    });
    expect(r.received[0]?.body.text).toMatch(
      /^Tollgate: gateway key ci of ann reached 50% of its monthly budget/,
    );

    // A second key of ann's (no key budget) takes the org to 50 % of its cap.
    const other = await h.services.keys.issue(h.admin, { user: 'ann', policy: {} });
    for (let i = 0; i < 5; i++) await h.client(other.key).messages.create(PARAMS);
    await until(
      'the org POST',
      () => r.received.length,
      (n) => n === 2,
    );
    await h.gateway.alerts.idle();
    expect(r.received[1]?.body).toMatchObject({
      kind: 'budget',
      scope: 'org',
      id: h.installation.orgId,
      name: null,
      period: 'month',
      threshold: 0.5,
      limit_micro_usd: cap,
    });
    expect(r.received[1]?.body.text).toMatch(/^Tollgate: the organisation reached 50% of its monthly budget/);
    // The team (far from its budget) raised nothing; nothing was sent twice.
    expect(r.received).toHaveLength(2);
  });
});
