// Budget alerts end to end: real traffic through the official SDK against the fake upstream until a
// user's monthly budget crosses 50 % and 80 % (and, once its limit is lowered under the spend, 100 %): one
// webhook POST per crossing at a local receiver, with the Slack `text` and the structured fields, an audit
// entry per crossing that never holds the webhook URL; failures retried with backoff; no duplicate after
// a restart, including a restart between the crossing and its successful delivery. SQLite and PostgreSQL.
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway } from '../../src/gateway/gateway.js';
import { openInstallation } from '../../src/install/installation.js';
import { runCli } from '../helpers/cli.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { createPgSchema, PG_URL } from '../helpers/pg.js';
import { type Receiver, startReceiver, until } from './receiver.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'budget alerts [[fake output_tokens=20]]' }],
};
const FAST = {
  budgetDelayMs: 10,
  delivery: { backoffMs: 50, maxBackoffMs: 200, pollMs: 200, maxAttempts: 4 },
};

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

async function settle(h: Harness): Promise<void> {
  await h.gateway.deps.ledger.drain();
  await h.gateway.alerts.idle();
}

async function spentOf(h: Harness, userId: string): Promise<number> {
  await h.gateway.deps.ledger.drain();
  const rows = await h.installation.db.kysely
    .selectFrom('usage_records')
    .select('cost_micro')
    .where('user_id', '=', userId)
    .execute();
  return rows.reduce((s, r) => s + Number(r.cost_micro), 0);
}

async function alertRows(h: Pick<Harness, 'installation'>) {
  return h.installation.db.kysely
    .selectFrom('alerts')
    .selectAll()
    .orderBy('raised_at')
    .orderBy('condition')
    .execute();
}

/** Cost of one request (the same on every installation: the fake counts deterministically). */
async function unitCost(h: Harness): Promise<number> {
  await h.services.users.add(h.admin, { name: 'probe', monthlyBudgetMicro: null });
  const key = (await h.services.keys.issue(h.admin, { user: 'probe', policy: {} })).key;
  await h.client(key).messages.create(PARAMS);
  return spentOf(h, (await h.services.users.get('probe')).id);
}

describe.each(databases)('budget alerts (%s)', (_name, database) => {
  let h: Harness | null = null;
  let receiver: Receiver | null = null;
  let drop: () => Promise<void> = async () => {};
  afterEach(async () => {
    await h?.close();
    h = null;
    await receiver?.close();
    receiver = null;
    await drop();
  });

  async function start(extraEnv: Record<string, string> = {}): Promise<Harness> {
    const opened = await database();
    drop = opened.drop;
    receiver = await startReceiver();
    h = await startHarness({
      env: { ...opened.env, TOLLGATE_ALERTS_WEBHOOK_URL: receiver.url, ...extraEnv },
      alerts: FAST,
    });
    await h.orgCredential();
    return h;
  }

  it('one POST per crossing at 50 %, 80 % and 100 %, with the text and the structured fields', async () => {
    const h = await start();
    const r = receiver as Receiver;
    const unit = await unitCost(h);
    const limit = 10 * unit;
    const ann = await h.services.users.add(h.admin, { name: 'ann', monthlyBudgetMicro: limit });
    // Control: a user without a budget spends as much and raises nothing.
    await h.services.users.add(h.admin, { name: 'bob', monthlyBudgetMicro: null });
    const annKey = (await h.services.keys.issue(h.admin, { user: 'ann', policy: {} })).key;
    const bobKey = (await h.services.keys.issue(h.admin, { user: 'bob', policy: {} })).key;

    const seen: Array<{ spent: number; posts: number }> = [];
    for (let i = 0; i < 15; i++) {
      await h.client(bobKey).messages.create(PARAMS);
      const answer = await h
        .client(annKey)
        .messages.create(PARAMS)
        .then(
          () => 'ok',
          (error: unknown) => error,
        );
      await settle(h);
      const spent = await spentOf(h, ann.id);
      const expected = [0.5, 0.8, 1].filter((t) => spent >= t * limit).length;
      const posts = await until(
        'the POSTs of the crossings so far',
        () => r.received.length,
        (n) => n >= expected,
      );
      // Exactly one POST per threshold crossed so far: never early, never twice.
      expect(posts, `after ${spent} of ${limit}`).toBe(expected);
      seen.push({ spent, posts });
      if (answer !== 'ok') {
        expect(answer).toMatchObject({ status: 429 });
        break;
      }
    }
    // The gateway's reservations keep settled spend within the limit: traffic crossed 50 % and 80 %.
    expect(seen.some((s) => s.posts === 1)).toBe(true);
    expect(r.received.map((p) => p.body.threshold)).toEqual([0.5, 0.8]);
    const spent = await spentOf(h, ann.id);
    expect(spent).toBeLessThanOrEqual(limit);

    // Lowering the limit under what was spent crosses 100 %: found without more traffic.
    const lowered = spent - 1;
    await h.api('PUT', '/admin/v1/budgets', {
      body: { scope: 'user', target: 'ann', period: 'month', limit_usd: (lowered / 1e6).toFixed(6) },
    });
    await h.refresh();
    await until(
      'the 100 % POST',
      () => r.received.length,
      (n) => n === 3,
    );
    const last = r.received[2]?.body ?? {};
    const monthStart = new Date(
      Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1),
    ).toISOString();
    expect(last).toMatchObject({
      kind: 'budget',
      scope: 'user',
      id: ann.id,
      name: 'ann',
      period: 'month',
      period_start: monthStart,
      threshold: 1,
      limit_micro_usd: lowered,
      spent_micro_usd: spent,
    });
    expect(last.text).toMatch(/^Tollgate: user ann has used its whole monthly budget/);
    const first = r.received[0]?.body ?? {};
    expect(first).toMatchObject({ kind: 'budget', scope: 'user', id: ann.id, name: 'ann', threshold: 0.5 });
    expect(first.limit_micro_usd).toBe(limit);
    expect(first.limit_usd).toBe(
      (limit / 1e6)
        .toFixed(6)
        .replace(/0+$/, '')
        .replace(/\.(\d)$/, '.$10'),
    );
    expect(Number(first.spent_micro_usd)).toBeGreaterThanOrEqual(limit / 2);
    expect(first.text).toMatch(
      /^Tollgate: user ann reached 50% of its monthly budget \(\$[\d.]+ of \$[\d.]+, month from \d{4}-\d\d-01\)$/,
    );
    // Every POST carries its alert id (header and body), each a different one.
    const ids = r.received.map((p) => p.body.alert_id);
    expect(new Set(ids).size).toBe(3);
    expect(r.received.map((p) => p.headers['x-tollgate-alert-id'])).toEqual(ids);
    expect(r.received.every((p) => p.path === '/hooks/T000/B000/fake-slack-token')).toBe(true);

    // No other scope had a budget: bob, the keys and the org raised nothing.
    const rows = await until(
      'all delivered',
      () => alertRows(h),
      (x) => x.every((a) => a.delivery === 'delivered'),
    );
    expect(rows.map((a) => [a.kind, a.target_id, a.delivery])).toEqual([
      ['budget', ann.id, 'delivered'],
      ['budget', ann.id, 'delivered'],
      ['budget', ann.id, 'delivered'],
    ]);
    // One audit entry per crossing, without the webhook URL anywhere in the audit log or the alerts table.
    const audit = await h.installation.db.kysely.selectFrom('audit_log').selectAll().execute();
    const raised = audit.filter((a) => a.action === 'alert.raised');
    expect(raised.map((a) => [a.target_type, a.target_id, JSON.parse(a.details).threshold])).toEqual([
      ['user', ann.id, 0.5],
      ['user', ann.id, 0.8],
      ['user', ann.id, 1],
    ]);
    const stored = JSON.stringify([audit, rows]);
    expect(stored).not.toContain('fake-slack-token');
    expect(stored).not.toContain(String(r.port));
    expect((await h.services.audit.verify()).ok).toBe(true);
  });

  it('retries a receiver that answers 500 and one that refuses connections, then delivers once', async () => {
    const h = await start();
    const r = receiver as Receiver;
    const unit = await unitCost(h);
    await h.services.users.add(h.admin, { name: 'cy', monthlyBudgetMicro: 10 * unit });
    const key = (await h.services.keys.issue(h.admin, { user: 'cy', policy: {} })).key;
    r.failNext(500, 503);
    for (let i = 0; i < 5; i++) await h.client(key).messages.create(PARAMS); // 50 %
    await until(
      'three attempts',
      () => r.received.length,
      (n) => n >= 3,
    );
    await until(
      'delivered',
      () => alertRows(h),
      (rows) => rows[0]?.delivery === 'delivered',
    );
    expect(r.received.map((p) => p.body.threshold)).toEqual([0.5, 0.5, 0.5]);
    expect(new Set(r.received.map((p) => p.body.alert_id)).size).toBe(1);
    const [row] = await alertRows(h);
    expect(row).toMatchObject({ attempts: 3, delivery: 'delivered', last_error: null });

    // Connection refused: the receiver is down at the crossing and comes back on the same port.
    const port = r.port;
    await r.close();
    for (let i = 0; i < 3; i++) await h.client(key).messages.create(PARAMS); // 80 %
    await settle(h);
    const pending = await until(
      'a failed attempt',
      () => alertRows(h),
      (rows) => (rows[1]?.attempts ?? 0) >= 1,
    );
    expect(pending[1]).toMatchObject({ delivery: 'pending', last_error: 'ECONNREFUSED' });
    receiver = await startReceiver(port);
    await until(
      'delivered after the receiver is back',
      () => alertRows(h),
      (rows) => rows[1]?.delivery === 'delivered',
    );
    expect((receiver as Receiver).received.map((p) => p.body.threshold)).toEqual([0.8]);
  });

  it('a redirect is not followed nor retried; attempts stop at the maximum', async () => {
    const h = await start();
    const r = receiver as Receiver;
    const unit = await unitCost(h);
    await h.services.users.add(h.admin, { name: 'dee', monthlyBudgetMicro: 10 * unit });
    const key = (await h.services.keys.issue(h.admin, { user: 'dee', policy: {} })).key;
    r.failNext(302);
    for (let i = 0; i < 5; i++) await h.client(key).messages.create(PARAMS); // 50 %
    const rows = await until(
      'failed',
      () => alertRows(h),
      (x) => x[0]?.delivery === 'failed',
    );
    expect(rows[0]).toMatchObject({ attempts: 1, last_error: 'HTTP 302 (redirects are not followed)' });
    expect(r.received).toHaveLength(1);

    // A receiver that keeps failing: attempts stop at the maximum (4 here) and the alert is marked failed.
    r.failNext(500, 500, 500, 500, 500);
    for (let i = 0; i < 3; i++) await h.client(key).messages.create(PARAMS); // 80 %
    const gaveUp = await until(
      'gave up',
      () => alertRows(h),
      (x) => x[1]?.delivery === 'failed',
    );
    expect(gaveUp[1]).toMatchObject({ attempts: 4, last_error: 'HTTP 500 (gave up after 4 attempts)' });
    expect(r.received.map((p) => p.body.threshold)).toEqual([0.5, 0.8, 0.8, 0.8, 0.8]);
  });
});

describe.each(databases)('no duplicate after a restart (%s)', (_name, database) => {
  it('a restart between the crossing and its delivery delivers it once; delivered ones are not sent again', async () => {
    const opened = await database();
    const receiver = await startReceiver();
    const h = await startHarness({
      env: { ...opened.env, TOLLGATE_ALERTS_WEBHOOK_URL: receiver.url },
      alerts: { ...FAST, delivery: { ...FAST.delivery, backoffMs: 60_000, maxBackoffMs: 60_000 } },
    });
    try {
      await h.orgCredential();
      const unit = await unitCost(h);
      const limit = 10 * unit;
      const eve = await h.services.users.add(h.admin, { name: 'eve', monthlyBudgetMicro: limit });
      const key = (await h.services.keys.issue(h.admin, { user: 'eve', policy: {} })).key;
      for (let i = 0; i < 5; i++) await h.client(key).messages.create(PARAMS); // 50 %, delivered
      await until(
        'the 50 % POST',
        () => receiver.received.length,
        (n) => n === 1,
      );
      receiver.failNext(500);
      for (let i = 0; i < 3; i++) await h.client(key).messages.create(PARAMS); // 80 %, refused once
      await until(
        'the failed 80 % attempt',
        () => receiver.received.length,
        (n) => n === 2,
      );
      await settle(h);
      const before = await alertRows(h);
      expect(before.map((a) => [a.delivery, a.attempts])).toEqual([
        ['delivered', 1],
        ['pending', 1],
      ]);

      // Undelivered, as status (API and CLI) and the overview show it.
      const overview = await h.api('GET', '/admin/v1/overview');
      expect(overview.json.alert_log).toMatchObject({ webhook: true, undelivered_count: 1 });
      expect(overview.json.alert_log.undelivered[0]).toMatchObject({
        kind: 'budget',
        delivery: 'pending',
        attempts: 1,
        last_error: 'HTTP 500',
      });
      const status = await h.api('GET', '/admin/v1/status');
      expect(status.json.alerts).toEqual(overview.json.alert_log);
      const cliEnv = {
        ...opened.env,
        TOLLGATE_HOME: h.config.home,
        TOLLGATE_UPSTREAM_URL: h.fake.url,
        TOLLGATE_ALERTS_WEBHOOK_URL: receiver.url,
      };
      const text = await runCli(['status'], cliEnv);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toContain('Recent alerts (webhook configured):');
      expect(text.stdout).toContain('Undelivered alerts: 1');
      expect(text.stdout).toMatch(
        /user eve reached 80% of its monthly budget .*\[pending, 1 attempt\(s\): HTTP 500\]/,
      );
      expect(text.stdout).toMatch(/user eve reached 50% of its monthly budget .*\[delivered\]/);
      expect(text.stdout + text.stderr).not.toContain('fake-slack-token');

      // Stop the gateway (its next attempt is a minute away), close the database, open it again and
      // start a new gateway on it, whose clock is past that minute.
      await h.gateway.close();
      await h.installation.close();
      const installation = await openInstallation(h.config);
      const later = () => Date.now() + 61_000;
      const restarted = createGateway({ installation, clock: later }, h.config, { alerts: FAST });
      await restarted.start();
      try {
        await until(
          'the 80 % alert delivered',
          () => alertRows({ installation }),
          (rows) => rows[1]?.delivery === 'delivered',
        );
        await restarted.alerts.idle();
        // Its start-up check saw both crossings again and raised nothing new.
        expect(receiver.received.map((p) => p.body.threshold)).toEqual([0.5, 0.8, 0.8]);
        expect(receiver.received[1]?.body.alert_id).toBe(receiver.received[2]?.body.alert_id);
        const rows = await alertRows({ installation });
        expect(rows).toHaveLength(2);
        expect(rows.map((a) => [a.delivery, a.attempts])).toEqual([
          ['delivered', 1],
          ['delivered', 2],
        ]);
        const raised = await installation.db.kysely
          .selectFrom('audit_log')
          .select('target_id')
          .where('action', '=', 'alert.raised')
          .execute();
        expect(raised).toEqual([{ target_id: eve.id }, { target_id: eve.id }]);
      } finally {
        await restarted.close();
        await installation.close();
      }
    } finally {
      await h.close().catch(() => undefined);
      await receiver.close();
      await opened.drop();
    }
  });
});
