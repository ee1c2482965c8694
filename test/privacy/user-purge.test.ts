// `user purge`: after it the person's name, email, IP and browser string appear in no text column of any
// table (SQLite, and PostgreSQL when TOLLGATE_TEST_DATABASE_URL is set), while they did before; the
// ledger's sums per team, model and org and the budgets' spend are unchanged; their key is refused; the
// audit chain still verifies (and still catches an edit); their audit fields read `[purged]` while another
// person's still read in the clear. The last admin cannot be purged, another admin can.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { change } from '../../src/install/context.js';
import { setOwnCredential } from '../../src/vault/own-credential.js';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';
import { createPgSchema, PG_URL } from '../helpers/pg.js';
import { columnsHolding } from './db-scan.js';

const PERSON = { name: 'zelda-quinlan', email: 'zelda.quinlan@example.org' };
const OTHER = { name: 'oscar-other', email: 'oscar.other@example.org' };
const IP = '203.0.113.77';
const AGENT = 'PurgeTestBrowser/9.1';
const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 64,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

type Target = { name: string; env: () => Promise<{ env: Record<string, string>; drop(): Promise<void> }> };
const targets: Target[] = [{ name: 'sqlite', env: async () => ({ env: {}, drop: async () => {} }) }];
const pgUrl = PG_URL;
if (pgUrl)
  targets.push({
    name: 'postgres',
    env: async () => {
      const schema = await createPgSchema(pgUrl);
      return { env: { TOLLGATE_DATABASE_URL: schema.url }, drop: schema.drop };
    },
  });

async function waitFor<T>(what: string, read: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(targets)('user purge on $name', (target) => {
  let h: Harness;
  let drop: () => Promise<void>;
  let personKey: string;

  const usage = async (by: string) =>
    (await h.api('GET', `/admin/v1/usage?by=${by}&since=2000-01-01`)).json.items as ApiJson[];
  const spend = () =>
    h.installation.db.kysely
      .selectFrom('spend')
      .selectAll()
      .orderBy(['scope_type', 'scope_id', 'period', 'period_start'])
      .execute();
  const auditOf = async (action: string, targetId: string) =>
    (await h.api('GET', `/admin/v1/audit?action=${action}&target_id=${targetId}`)).json.items as ApiJson[];

  beforeAll(async () => {
    const opened = await target.env();
    drop = opened.drop;
    h = await startHarness({ env: opened.env });
    await h.orgCredential();
    await h.services.teams.add(h.admin, { name: 'red', monthlyBudgetMicro: 50_000_000 });
    const person = await h.services.users.add(h.admin, {
      ...PERSON,
      team: 'red',
      monthlyBudgetMicro: 9_000_000,
    });
    await h.services.users.add(h.admin, { ...OTHER, team: 'red' });
    personKey = await h.key({ user: PERSON.name });
    const otherKey = await h.key({ user: OTHER.name });
    // Their own Anthropic key, a password and a browser session (its IP and user agent), a pending
    // invite, and a Claude Code analytics row keyed by their email (as `anthropic sync` imports it).
    const ctx = { installation: h.installation, clock: Date.now };
    await setOwnCredential(ctx, h.admin, {
      userId: person.id,
      provider: 'anthropic',
      secret: `sk-ant-api03-test-purge-${'p'.repeat(40)}AA`,
    });
    const invite = await h.services.invites.issue(h.admin, PERSON.name);
    const token = invite.url.split('/invite/')[1] ?? '';
    await h.services.invites.accept(token, 'correct horse battery staple', { ip: IP, userAgent: AGENT });
    await h.services.invites.issue(h.admin, PERSON.name);
    await change(ctx, h.admin, async (u) => {
      await u.tx
        .insertInto('anthropic_claude_code')
        .values({
          day: '2026-01-05',
          actor: PERSON.email,
          actor_kind: 'user',
          sessions: 3,
          lines_added: 10,
          lines_removed: 2,
          commits: 1,
          pull_requests: 0,
          tool_accepted: 4,
          tool_rejected: 1,
          estimated_micro: 1234,
        })
        .execute();
    });
    for (const key of [personKey, personKey, otherKey]) await h.client(key).messages.create(PARAMS);
    await waitFor(
      'usage',
      () => usage('team'),
      (rows) => rows.some((r) => r.team === 'red' && r.requests === 3),
    );
  }, 120_000);

  afterAll(async () => {
    await h?.close();
    await drop?.();
  });

  it('erases the person everywhere, keeps every sum, and the audit chain verifies', async () => {
    const db = h.installation.db;
    // Positive control: the person's data is in the database before.
    for (const text of [PERSON.name, PERSON.email, IP, AGENT])
      expect(await columnsHolding(db, text), text).not.toEqual([]);
    // …and the audit rows never hold the name in the clear, even before (sealed when written).
    expect(await columnsHolding(db, PERSON.name)).not.toContain('audit_log.details');
    const person = await h.services.users.show(PERSON.name);
    const other = await h.services.users.show(OTHER.name);
    expect((await auditOf('user.add', person.id))[0].details.name).toBe(PERSON.name);

    const before = {
      team: await usage('team'),
      model: await usage('model'),
      key: await usage('key'),
      user: await usage('user'),
      spend: await spend(),
    };
    expect(before.spend.length).toBeGreaterThan(0);

    const purged = await h.api('POST', `/admin/v1/users/${PERSON.name}/purge`);
    expect(purged.status).toBe(200);
    expect(purged.json).toMatchObject({
      id: person.id,
      purged: true,
      revoked_keys: 1,
      shredded_credentials: 1,
    });
    const pseudonym: string = purged.json.pseudonym;
    expect(pseudonym).toMatch(/^purged-[0-9a-f]{12}$/);

    for (const text of [PERSON.name, PERSON.email, IP, AGENT])
      expect(await columnsHolding(db, text), text).toEqual([]);
    // The other person is untouched (control for an over-eager scrub).
    expect(await columnsHolding(db, OTHER.name)).toContain('users.name');
    expect(await columnsHolding(db, OTHER.email)).toContain('users.email');

    // The ledger and the budgets add up exactly as before; only the person's label changed.
    expect(await usage('team')).toEqual(before.team);
    expect(await usage('model')).toEqual(before.model);
    expect(await usage('key')).toEqual(before.key);
    expect(await spend()).toEqual(before.spend);
    const relabelled = before.user.map((r) => (r.user === PERSON.name ? { ...r, user: pseudonym } : r));
    expect(await usage('user')).toEqual(relabelled);
    expect(relabelled).not.toEqual(before.user);

    // Their key no longer works.
    await h.refresh();
    await expect(h.client(personKey, { maxRetries: 0 }).messages.create(PARAMS)).rejects.toMatchObject({
      status: 401,
    });

    // The chain verifies; the person's sealed fields read [purged], the other person's still read.
    expect(await h.services.audit.verify()).toMatchObject({ ok: true });
    expect((await auditOf('user.add', person.id))[0].details.name).toBe('[purged]');
    expect((await auditOf('user.add', other.id))[0].details.name).toBe(OTHER.name);
    const entry = (await auditOf('user.purge', person.id))[0];
    expect(entry.details).toMatchObject({ pseudonym, revoked_keys: 1 });
    expect(JSON.stringify(entry)).not.toContain(PERSON.name.split('-')[0]);

    // A second purge is refused.
    expect((await h.api('POST', `/admin/v1/users/${person.id}/purge`)).status).toBe(409);
  });

  it('audit verify still catches an edit after a purge', async () => {
    const db = h.installation.db.kysely;
    const row = await db
      .selectFrom('audit_log')
      .select(['seq', 'details'])
      .where('action', '=', 'user.purge')
      .executeTakeFirstOrThrow();
    expect(await h.services.audit.verify()).toMatchObject({ ok: true });
    await db
      .updateTable('audit_log')
      .set({ details: '{"pseudonym":"x"}' })
      .where('seq', '=', row.seq)
      .execute();
    try {
      expect(await h.services.audit.verify()).toMatchObject({
        ok: false,
        firstBroken: { seq: row.seq, reason: 'hash-mismatch' },
      });
    } finally {
      await db.updateTable('audit_log').set({ details: row.details }).where('seq', '=', row.seq).execute();
    }
    expect(await h.services.audit.verify()).toMatchObject({ ok: true });
  });

  it('refuses to purge the last admin, and purges an admin when another remains', async () => {
    await h.services.users.add(h.admin, { name: 'ada-first', role: 'admin' });
    const refused = await h.api('POST', '/admin/v1/users/ada-first/purge');
    expect(refused.status).toBe(409);
    expect(refused.json.error.message).toContain('last admin');
    expect((await h.services.users.show('ada-first')).name).toBe('ada-first');

    await h.services.users.add(h.admin, { name: 'ada-second', role: 'admin' });
    const allowed = await h.api('POST', '/admin/v1/users/ada-first/purge');
    expect(allowed.status).toBe(200);
    // The remaining admin is now the last one.
    expect((await h.api('POST', '/admin/v1/users/ada-second/purge')).status).toBe(409);
  });
});
