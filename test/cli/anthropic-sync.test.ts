// `tollgate anthropic sync` through the real CLI against the fake's usage and cost reports, with traffic
// sent through Tollgate by the official SDK: zero drift when everything went through Tollgate; requests
// sent straight to the fake with the org key reported as drift to the token and the micro-dollar; a key
// that is no Tollgate credential flagged; a second import changing nothing; paged reports.
import { randomBytes } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { createPgSchema, PG_URL, type PgSchema } from '../helpers/pg.js';

interface Figures {
  input_tokens: number;
  output_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  cache_read_tokens: number;
  cost_micro_usd: number | null;
}
interface Row {
  day: string;
  credential: string | null;
  api_key_id: string | null;
  api_key_name: string | null;
  model: string;
  tollgate: Figures;
  anthropic: Figures;
  drift_tokens: number;
  drift_micro_usd: number | null;
  flag: string | null;
}
interface SyncJson {
  since: string;
  until: string;
  imported: { usage_rows: number; cost_rows: number };
  rows: Row[];
  cost_report_micro_usd: number;
  priced_usage_micro_usd: number;
}

/** A test key with a chosen ending, so every key's `partial_key_hint` (first 16 + last 4) differs. */
const testKey = (end: string) => `sk-ant-api03-test-sync-${randomBytes(30).toString('hex')}${end}`;
const ORG_KEY = testKey('org1');
const CONSOLE_KEY = testKey('con2');
const STRAY_KEY = testKey('str3');
const ADMIN_KEY = `sk-ant-admin01-test-sync-${randomBytes(30).toString('hex')}adm4`;
const MODEL = 'claude-sonnet-4-6';
const DAY = 86_400_000;
const today = () => new Date().toISOString().slice(0, 10);
const tomorrow = () => new Date(Date.now() + DAY).toISOString().slice(0, 10);
const daysAgo = (n: number) => new Date(Date.now() - n * DAY).toISOString().slice(0, 10);

let h: Harness;
let env: Record<string, string>;

const cli = (argv: string[]) => runCli(argv, env);
async function sync(extra: string[] = []): Promise<SyncJson> {
  const result = await cli([
    'anthropic',
    'sync',
    '--since',
    daysAgo(4),
    '--until',
    tomorrow(),
    '--json',
    ...extra,
  ]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as SyncJson;
}
const todays = (s: SyncJson) => s.rows.filter((r) => r.day === today());

/** Sonnet 4.6 at $3 / $15 / $3.75 / $6 / $0.30 per million tokens, in micro-USD (pico sum, rounded half up). */
function sonnet46Micro(u: Anthropic.Usage): number {
  const pico =
    u.input_tokens * 3_000_000 +
    u.output_tokens * 15_000_000 +
    (u.cache_creation?.ephemeral_5m_input_tokens ?? 0) * 3_750_000 +
    (u.cache_creation?.ephemeral_1h_input_tokens ?? 0) * 6_000_000 +
    (u.cache_read_input_tokens ?? 0) * 300_000;
  return Math.floor(pico / 1_000_000) + (pico % 1_000_000 >= 500_000 ? 1 : 0);
}
const usageTokens = (u: Anthropic.Usage) =>
  u.input_tokens + u.output_tokens + (u.cache_creation_input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0);

async function send(client: Anthropic, outputTokens: number, text = 'hello there'): Promise<Anthropic.Usage> {
  const message = await client.messages.create({
    model: MODEL,
    max_tokens: 200,
    messages: [{ role: 'user', content: `${text} [[fake output_tokens=${outputTokens}]]` }],
  });
  return message.usage;
}

const targets: Array<{ name: string; db: () => Promise<PgSchema | null> }> = [
  { name: 'sqlite', db: async () => null },
  ...(PG_URL ? [{ name: 'postgres', db: () => createPgSchema(PG_URL as string) }] : []),
];

describe.each(targets)('tollgate anthropic sync on $name', (target) => {
  let schema: PgSchema | null = null;
  beforeAll(async () => {
    schema = await target.db();
    h = await startHarness(schema ? { env: { TOLLGATE_DATABASE_URL: schema.url } } : {});
    env = {
      TOLLGATE_HOME: h.config.home,
      TOLLGATE_UPSTREAM_URL: h.fake.url,
      ...(schema ? { TOLLGATE_DATABASE_URL: schema.url } : {}),
    };
    await h.services.credentials.add(h.admin, {
      name: 'org-key',
      provider: 'anthropic',
      secret: ORG_KEY,
      validate: true,
    });
    h.fake.admin.addApiKey({ secret: ORG_KEY, id: 'apikey_org0001', name: 'tollgate org key' });
    h.fake.admin.addApiKey({ secret: CONSOLE_KEY, id: 'apikey_console01', name: 'console key' });
  });
  afterAll(async () => {
    await h.close();
    await schema?.drop();
  });

  it('refuses without an admin key, then works once one is added', async () => {
    const refused = await cli(['anthropic', 'sync', '--until', tomorrow()]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('no Anthropic admin key is configured');
    await h.services.credentials.add(h.admin, {
      name: 'org-admin',
      provider: 'anthropic-admin',
      secret: ADMIN_KEY,
      validate: true,
    });
    const empty = await sync();
    expect(empty.rows).toEqual([]);
    expect(empty.imported).toEqual({ usage_rows: 0, cost_rows: 0, claude_code_rows: 0 });
  });

  it('refuses unreadable dates and an empty range, beside a range that works', async () => {
    const bad = await cli(['anthropic', 'sync', '--until', 'yesterday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--until takes a date (YYYY-MM-DD) or an RFC 3339 time');
    const backwards = await cli(['anthropic', 'sync', '--since', tomorrow(), '--until', today()]);
    expect(backwards.code).toBe(2);
    expect(backwards.stderr).toContain('--until must be after --since');
    const rfc = await cli([
      'anthropic',
      'sync',
      '--since',
      daysAgo(1),
      '--until',
      `${tomorrow()}T00:00:00Z`,
      '--json',
    ]);
    expect(rfc.code).toBe(0);
    expect((JSON.parse(rfc.stdout) as SyncJson).since).toBe(`${daysAgo(1)}T00:00:00.000Z`);
  });

  it('reports zero drift when every request went through Tollgate', async () => {
    const client = h.client(await h.key({ credential: 'org-key' }));
    const usages = [
      await send(client, 7),
      await send(client, 31, 'a longer prompt for the second one'),
      await send(client, 3),
    ];
    await h.gateway.deps.ledger.drain();
    const s = await sync();
    const rows = todays(s);
    expect(rows).toHaveLength(1);
    const row = rows[0] as Row;
    const tokens = usages.reduce((n, u) => n + usageTokens(u), 0);
    const micro = usages.reduce((n, u) => n + sonnet46Micro(u), 0);
    expect(row).toMatchObject({
      credential: 'org-key',
      api_key_id: 'apikey_org0001',
      model: MODEL,
      flag: null,
    });
    expect(row.tollgate.output_tokens).toBe(41);
    expect(row.anthropic.output_tokens).toBe(41);
    expect(row.tollgate.input_tokens + row.tollgate.output_tokens).toBe(tokens);
    expect(row.tollgate.cost_micro_usd).toBe(micro);
    expect(row.anthropic.cost_micro_usd).toBe(micro);
    expect(row.drift_tokens).toBe(0);
    expect(row.drift_micro_usd).toBe(0);
    // The cost report (cents as strings) agrees with the usage priced by Tollgate, to the micro-dollar.
    expect(s.cost_report_micro_usd).toBe(micro);
    expect(s.priced_usage_micro_usd).toBe(micro);
  });

  it('reports requests sent straight to Anthropic with the org key as drift, exactly', async () => {
    const before = todays(await sync())[0] as Row;
    const direct = new Anthropic({ apiKey: ORG_KEY, baseURL: h.fake.url, maxRetries: 0 });
    const usages = [await send(direct, 11, 'bypassing the gateway'), await send(direct, 5)];
    const s = await sync();
    const row = todays(s).find((r) => r.credential === 'org-key') as Row;
    const tokens = usages.reduce((n, u) => n + usageTokens(u), 0);
    const micro = usages.reduce((n, u) => n + sonnet46Micro(u), 0);
    expect(tokens).toBeGreaterThan(16);
    expect(row.flag).toBe('drift');
    expect(row.tollgate).toEqual(before.tollgate);
    expect(row.drift_tokens).toBe(tokens);
    expect(row.drift_micro_usd).toBe(micro);
    expect(row.anthropic.cost_micro_usd).toBe((before.anthropic.cost_micro_usd ?? 0) + micro);
    expect(s.cost_report_micro_usd).toBe(s.priced_usage_micro_usd);
  });

  it('flags traffic on keys that are no Tollgate credential, listed or not', async () => {
    await send(new Anthropic({ apiKey: CONSOLE_KEY, baseURL: h.fake.url, maxRetries: 0 }), 9);
    const stray = await send(new Anthropic({ apiKey: STRAY_KEY, baseURL: h.fake.url, maxRetries: 0 }), 4);
    const rows = todays(await sync());
    const flagged = rows.filter((r) => r.flag === 'not_through_tollgate');
    expect(flagged.map((r) => [r.credential, r.api_key_id, r.api_key_name])).toEqual([
      [null, 'apikey_console01', 'console key'],
      [null, 'apikey_unlisted0001', null],
    ]);
    const strayRow = flagged[1] as Row;
    expect(strayRow.drift_tokens).toBe(usageTokens(stray));
    expect(strayRow.drift_micro_usd).toBe(sonnet46Micro(stray));
    // The credential's row is unchanged by other keys' traffic.
    expect(rows.filter((r) => r.credential === 'org-key')).toHaveLength(1);
  });

  it('changes nothing when run twice', async () => {
    const table = async () => ({
      usage: await h.installation.db.kysely
        .selectFrom('anthropic_usage_report')
        .selectAll()
        .orderBy('day')
        .orderBy('api_key_id')
        .orderBy('model')
        .execute(),
      cost: await h.installation.db.kysely
        .selectFrom('anthropic_cost_report')
        .selectAll()
        .orderBy('day')
        .orderBy('description')
        .execute(),
    });
    const first = await sync();
    const rows = await table();
    expect(rows.usage.length).toBe(3);
    expect(rows.cost.length).toBeGreaterThan(0);
    const second = await sync();
    expect(await table()).toEqual(rows);
    expect(second.rows).toEqual(first.rows);
    expect(second.imported).toEqual(first.imported);
  });

  it('replaces the days it reads: a line Anthropic no longer reports goes, other days stay', async () => {
    const db = h.installation.db.kysely;
    const line = {
      workspace_id: '',
      model: MODEL,
      uncached_input_tokens: 5,
      cache_write_5m_tokens: 0,
      cache_write_1h_tokens: 0,
      cache_read_tokens: 0,
      output_tokens: 5,
      web_search_requests: 0,
    };
    await db
      .insertInto('anthropic_usage_report')
      .values([
        { ...line, day: today(), api_key_id: 'apikey_gone' },
        { ...line, day: daysAgo(30), api_key_id: 'apikey_gone' },
      ])
      .execute();
    await sync();
    const left = await db
      .selectFrom('anthropic_usage_report')
      .select('day')
      .where('api_key_id', '=', 'apikey_gone')
      .execute();
    expect(left).toEqual([{ day: daysAgo(30) }]);
  });

  it('refuses a cost report whose amount is not cents as a string, importing nothing', async () => {
    const db = h.installation.db.kysely;
    const before = await db
      .selectFrom('anthropic_cost_report')
      .selectAll()
      .orderBy('day')
      .orderBy('description')
      .execute();
    const bucket = { starting_at: `${today()}T00:00:00Z`, ending_at: `${tomorrow()}T00:00:00Z` };
    h.fake.enqueueFault(
      {
        kind: 'status',
        status: 200,
        body: {
          data: [{ ...bucket, results: [{ amount: 12.5, currency: 'USD' }] }],
          has_more: false,
          next_page: null,
        },
      },
      { path: '/v1/organizations/cost_report' },
    );
    const refused = await cli(['anthropic', 'sync', '--since', daysAgo(4), '--until', tomorrow()]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('was not in the expected shape');
    expect(
      await db
        .selectFrom('anthropic_cost_report')
        .selectAll()
        .orderBy('day')
        .orderBy('description')
        .execute(),
    ).toEqual(before);
    // The same answer with the amount as a string is taken, exactly.
    h.fake.enqueueFault(
      {
        kind: 'status',
        status: 200,
        body: {
          data: [{ ...bucket, results: [{ amount: '12.3456', currency: 'USD', description: 'x' }] }],
          has_more: false,
          next_page: null,
        },
      },
      { path: '/v1/organizations/cost_report' },
    );
    await sync();
    const line = await db
      .selectFrom('anthropic_cost_report')
      .selectAll()
      .where('description', '=', 'x')
      .executeTakeFirst();
    expect(line).toMatchObject({ amount_cents: '12.3456' });
    expect(Number(line?.amount_micro)).toBe(123_456);
    await sync(); // back to the fake's own report
  });

  it('walks every page of the reports', async () => {
    const unpaged = await sync();
    h.fake.reports.setMaxBuckets(2);
    const from = h.fake.served.length;
    const paged = await sync();
    const pages = h.fake.served
      .slice(from)
      .filter((r) => r.path === '/v1/organizations/usage_report/messages');
    // 4 days ago .. tomorrow: 6 daily buckets, 2 per page.
    expect(pages).toHaveLength(3);
    expect(pages.map((p) => p.query.page !== undefined)).toEqual([false, true, true]);
    expect(paged.rows).toEqual(unpaged.rows);
    h.fake.reports.setMaxBuckets(1000);
  });

  it('prints a table and audits the import with counts only', async () => {
    const table = await cli(['anthropic', 'sync', '--since', daysAgo(1), '--until', tomorrow()]);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('drift tokens');
    expect(table.stdout).toContain('not_through_tollgate');
    expect(table.stdout).toContain('Cost report total');
    const audit = await cli(['audit', 'list', '--json']);
    expect(audit.code).toBe(0);
    const entries = (
      JSON.parse(audit.stdout) as Array<{ action: string; details: Record<string, unknown> }>
    ).filter((e) => e.action === 'anthropic.sync');
    expect(entries.length).toBeGreaterThan(0);
    expect(Object.keys(entries[0]?.details ?? {}).sort()).toEqual([
      'claude_code_rows',
      'cost_rows',
      'usage_rows',
    ]);
    for (const secret of [ORG_KEY, CONSOLE_KEY, STRAY_KEY, ADMIN_KEY]) {
      expect(table.stdout + audit.stdout).not.toContain(secret);
    }
  });
});
