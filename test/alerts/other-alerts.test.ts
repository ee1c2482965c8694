// The other alerts through the same machinery: a credential the gateway marks invalid (after its own
// validation call confirms an upstream 401) and keys and credentials older than
// security.key_max_age_days — each raised once per object and condition, audited, POSTed to the
// webhook — and what `tollgate status` and the overview show of them, with and without a webhook.
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';
import { createPgSchema, PG_URL } from '../helpers/pg.js';
import { type Receiver, startReceiver, until } from './receiver.js';

const DAY = 86_400_000;
const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'other alerts' }],
};
const FAST = { budgetDelayMs: 10, delivery: { backoffMs: 50, maxBackoffMs: 200, pollMs: 200 } };

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

describe.each(databases)('credential and age alerts (%s)', (_name, database) => {
  let h: Harness | null = null;
  let receiver: Receiver | null = null;
  let drop: () => Promise<void> = async () => {};
  let now = Date.now();
  afterEach(async () => {
    await h?.close();
    h = null;
    await receiver?.close();
    receiver = null;
    await drop();
  });

  async function start(webhook: boolean): Promise<{ h: Harness; env: Record<string, string> }> {
    const opened = await database();
    drop = opened.drop;
    receiver = await startReceiver();
    const env = { ...opened.env, ...(webhook ? { TOLLGATE_ALERTS_WEBHOOK_URL: receiver.url } : {}) };
    now = Date.now();
    h = await startHarness({ env, clock: () => now, alerts: FAST });
    return { h, env: { ...env, TOLLGATE_HOME: h.config.home, TOLLGATE_UPSTREAM_URL: h.fake.url } };
  }

  const rowsOf = (h: Harness) =>
    h.installation.db.kysely.selectFrom('alerts').selectAll().orderBy('raised_at').orderBy('kind').execute();

  it('a credential marked invalid: one alert and one POST; the healthy credential raises none', async () => {
    const { h } = await start(true);
    const r = receiver as Receiver;
    const a = await h.orgCredential('org-a');
    await h.orgCredential('org-b');
    const key = await h.key();
    h.fake.revokeKey(a);
    await h.client(key).messages.create(PARAMS);
    await until(
      'the POST',
      () => r.received.length,
      (n) => n === 1,
    );
    const cred = await h.services.credentials.show('org-a');
    expect(r.received[0]?.body).toMatchObject({
      kind: 'credential_invalid',
      scope: 'credential',
      id: cred.id,
      name: 'org-a',
    });
    expect(r.received[0]?.body.text).toBe(
      'Tollgate: credential org-a was marked invalid: Anthropic answered 401 and a validation call confirmed it; rotate or remove it',
    );
    // More traffic (served by org-b) raises nothing more.
    for (let i = 0; i < 3; i++) await h.client(key).messages.create(PARAMS);
    await h.gateway.alerts.idle();
    const rows = await until(
      'delivered',
      () => rowsOf(h),
      (x) => x.every((row) => row.delivery === 'delivered'),
    );
    expect(rows.map((row) => [row.kind, row.target_id])).toEqual([['credential_invalid', cred.id]]);
    expect(r.received).toHaveLength(1);
    // Raised in the marking's own transaction: right after its credential.invalid audit entry.
    const audit = await h.services.audit.list({ limit: 1000 });
    const actions = audit.map((e) => e.action);
    expect(actions).toContain('credential.invalid');
    expect(audit.filter((e) => e.action === 'alert.raised').map((e) => e.targetId)).toEqual([cred.id]);
    expect(JSON.stringify(audit)).not.toContain(a);
  });

  it('keys and credentials past the age policy: once each; fresh, revoked and rotated ones are left alone', async () => {
    const { h } = await start(true);
    const r = receiver as Receiver;
    now = Date.now() - 100 * DAY;
    await h.orgCredential('old-cred');
    await h.orgCredential('rotated-cred');
    await h.services.users.add(h.admin, { name: 'ann', monthlyBudgetMicro: null });
    const old = await h.services.keys.issue(h.admin, { user: 'ann', name: 'ci-bot', policy: {} });
    const revoked = await h.services.keys.issue(h.admin, { user: 'ann', policy: {} });
    await h.services.keys.revoke(h.admin, revoked.id);
    now = Date.now();
    await h.services.credentials.rotate(
      h.admin,
      'rotated-cred',
      `sk-ant-api03-test-${'r'.repeat(40)}`,
      false,
    );
    const fresh = await h.services.keys.issue(h.admin, { user: 'ann', policy: {} });
    await h.gateway.alerts.checkAges();
    await h.gateway.alerts.checkAges();
    await until(
      'two POSTs',
      () => r.received.length,
      (n) => n >= 2,
    );
    await h.gateway.alerts.idle();
    const oldCred = await h.services.credentials.show('old-cred');
    expect(r.received.map((p) => [p.body.kind, p.body.id]).sort()).toEqual(
      [
        ['credential_age', oldCred.id],
        ['key_age', old.id],
      ].sort(),
    );
    const keyPost = r.received.find((p) => p.body.kind === 'key_age')?.body ?? {};
    expect(keyPost).toMatchObject({ name: 'ci-bot', user: 'ann', age_days: 100, max_age_days: 90 });
    expect(keyPost.text).toBe(
      `Tollgate: gateway key ci-bot of ann is 100 days old (policy: 90); rotate it: tollgate key rotate ${old.id} --grace 24h`,
    );
    const rows = await rowsOf(h);
    expect(rows.map((row) => row.target_id).sort()).toEqual([old.id, oldCred.id].sort());
    expect(rows.map((row) => row.target_id)).not.toContain(fresh.id);
    expect(rows.map((row) => row.target_id)).not.toContain(revoked.id);
  });

  it('without a webhook alerts are recorded, audited and shown by status and the overview, not sent', async () => {
    const { h, env } = await start(false);
    const r = receiver as Receiver;
    await h.orgCredential();
    now = Date.now() - 100 * DAY;
    await h.services.users.add(h.admin, { name: 'ann', monthlyBudgetMicro: null });
    const old = await h.services.keys.issue(h.admin, { user: 'ann', policy: {} });
    now = Date.now();
    await h.gateway.alerts.checkAges();
    await h.gateway.alerts.idle();
    expect(r.received).toEqual([]);
    const rows = await rowsOf(h);
    expect(rows.map((row) => [row.kind, row.delivery])).toEqual([['key_age', 'off']]);
    // Also audited without a webhook.
    expect(
      (await h.services.audit.list({ limit: 1000 })).filter((e) => e.action === 'alert.raised'),
    ).toHaveLength(1);

    const status = await h.api('GET', '/admin/v1/status');
    expect(status.status).toBe(200);
    expect(status.json.alerts).toMatchObject({ webhook: false, undelivered_count: 0, undelivered: [] });
    expect(status.json.alerts.recent.map((a: ApiJson) => [a.kind, a.object.id, a.delivery])).toEqual([
      ['key_age', old.id, 'off'],
    ]);
    const cli = await runCli(['status', '--json'], env);
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout).alerts).toEqual(status.json.alerts);
    const text = await runCli(['status'], env);
    expect(text.stdout).toContain('Recent alerts (webhook not configured: alerts are only recorded):');
    expect(text.stdout).toMatch(/gateway key key_\w+ of ann is 100 days old .*\[not sent: no webhook\]/);

    const overview = await h.api('GET', '/admin/v1/overview');
    expect(overview.status).toBe(200);
    expect(overview.json.alert_log).toEqual(status.json.alerts);
    expect(overview.json.alerts.map((a: ApiJson) => a.kind)).toContain('key_age');
  });
});
