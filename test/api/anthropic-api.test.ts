// The Anthropic side of the bill through the admin API (what the dashboard calls) and the remote CLI:
// a sync imports the reports, the key list and Claude Code analytics; the reconciliation is then read
// without calling Anthropic; Claude Code activity is matched to users by email beside their spend; an
// organisation without the Claude Code report still syncs the rest; spend limits are read and set.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { createPgSchema, PG_URL, type PgSchema } from '../helpers/pg.js';
import { findLeaks } from '../helpers/secrets.js';

/** A test key with a chosen ending, so every key's `partial_key_hint` (first 16 + last 4) differs. */
const testKey = (end: string) => `sk-ant-api03-test-api-${randomBytes(30).toString('hex')}${end}`;
const ORG_KEY = testKey('org1');
const STRAY_KEY = testKey('str2');
const ADMIN_KEY = `sk-ant-admin01-test-api-${randomBytes(30).toString('hex')}adm3`;
const MODEL = 'claude-sonnet-4-6';
const DAY = 86_400_000;
const today = () => new Date().toISOString().slice(0, 10);
const daysAgo = (n: number) => new Date(Date.now() - n * DAY).toISOString().slice(0, 10);
const tomorrow = () => new Date(Date.now() + DAY).toISOString().slice(0, 10);

let h: Harness;

const targets: Array<{ name: string; db: () => Promise<PgSchema | null> }> = [
  { name: 'sqlite', db: async () => null },
  ...(PG_URL ? [{ name: 'postgres', db: () => createPgSchema(PG_URL as string) }] : []),
];

function claudeCodeRecord(date: string, email: string, sessions: number, cents: number) {
  return {
    date: `${date}T00:00:00Z`,
    actor: { type: 'user_actor' as const, email_address: email },
    organization_id: 'org_fake_0001',
    customer_type: 'api' as const,
    terminal_type: 'vscode',
    core_metrics: {
      num_sessions: sessions,
      lines_of_code: { added: 10 * sessions, removed: sessions },
      commits_by_claude_code: 1,
      pull_requests_by_claude_code: 0,
    },
    tool_actions: { edit_tool: { accepted: 3, rejected: 1 }, write_tool: { accepted: 2, rejected: 0 } },
    model_breakdown: [
      {
        model: MODEL,
        tokens: { input: 100, output: 50, cache_read: 0, cache_creation: 0 },
        estimated_cost: { currency: 'USD' as const, amount: cents },
      },
    ],
  };
}

describe.each(targets)('on $name', (target) => {
  let schema: PgSchema | null = null;
  beforeAll(async () => {
    schema = await target.db();
    h = await startHarness(schema ? { env: { TOLLGATE_DATABASE_URL: schema.url } } : {});
    await h.services.credentials.add(h.admin, {
      name: 'org-key',
      provider: 'anthropic',
      secret: ORG_KEY,
      validate: true,
    });
    h.fake.admin.addApiKey({ secret: ORG_KEY, id: 'apikey_api0001', name: 'tollgate org key' });
    h.fake.admin.addApiKey({ secret: STRAY_KEY, id: 'apikey_stray001', name: 'laptop key' });
    await h.services.users.add(h.admin, { name: 'bob', email: 'Bob@Example.com' });
    const yesterday = new Date(Date.now() - DAY).toISOString().slice(0, 10);
    h.fake.claudeCode.add(claudeCodeRecord(today(), 'bob@example.com', 3, 42.5));
    h.fake.claudeCode.add(claudeCodeRecord(yesterday, 'bob@example.com', 2, 10));
    h.fake.claudeCode.add(claudeCodeRecord(today(), 'eve@example.com', 1, 7));
  });
  afterAll(async () => {
    await h.close();
    await schema?.drop();
  });

  describe('the reconciliation through the admin API', () => {
    it('is empty before any sync, and a sync needs an admin key', async () => {
      const before = await h.api('GET', '/admin/v1/anthropic/reconciliation');
      expect(before.status).toBe(200);
      expect(before.json.rows).toEqual([]);
      expect(before.json.last_sync_at).toBeNull();
      const refused = await h.api('POST', '/admin/v1/anthropic/sync', { body: {} });
      expect(refused.status).toBe(404);
      expect(refused.json.error.message).toContain('no Anthropic admin key is configured');
    });

    it('syncs, then reads the same reconciliation without calling Anthropic', async () => {
      await h.services.credentials.add(h.admin, {
        name: 'org-admin',
        provider: 'anthropic-admin',
        secret: ADMIN_KEY,
        validate: true,
      });
      const bob = await h.key({ user: 'bob' });
      const through = await h.client(bob).messages.create({
        model: MODEL,
        max_tokens: 100,
        messages: [{ role: 'user', content: 'hello [[fake output_tokens=20]]' }],
      });
      // A request sent around Tollgate on a key that is no Tollgate credential.
      const stray = await new Anthropic({
        apiKey: STRAY_KEY,
        baseURL: h.fake.url,
        maxRetries: 0,
      }).messages.create({
        model: MODEL,
        max_tokens: 50,
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(stray.usage.input_tokens).toBeGreaterThan(0);

      const range = { since: today(), until: tomorrow() };
      const synced = await h.api('POST', '/admin/v1/anthropic/sync', { body: range });
      expect(synced.status).toBe(200);
      expect(synced.json.imported.claude_code_rows).toBe(2);
      const mine = synced.json.rows.find((r: { credential: string | null }) => r.credential === 'org-key');
      expect(mine.drift_tokens).toBe(0);
      expect(mine.drift_micro_usd).toBe(0);
      expect(mine.tollgate.output_tokens).toBe(through.usage.output_tokens);
      const around = synced.json.rows.find(
        (r: { api_key_id: string | null }) => r.api_key_id === 'apikey_stray001',
      );
      expect(around.flag).toBe('not_through_tollgate');
      expect(around.api_key_name).toBe('laptop key');

      // Anthropic unreachable for admin calls: the stored reconciliation still reads, identical.
      h.fake.admin.setNoAccess(true);
      try {
        const query = new URLSearchParams(range).toString();
        const read = await h.api('GET', `/admin/v1/anthropic/reconciliation?${query}`);
        expect(read.status).toBe(200);
        const { imported: _imported, ...rest } = synced.json;
        expect(read.json).toEqual(rest);
        expect(read.json.last_sync_at).not.toBeNull();
      } finally {
        h.fake.admin.setNoAccess(false);
      }
    });

    it('refuses a malformed range (a well-formed one is the control)', async () => {
      const bad = await h.api('GET', '/admin/v1/anthropic/reconciliation?since=yesterday');
      expect(bad.status).toBe(400);
      const unknown = await h.api('GET', '/admin/v1/anthropic/reconciliation?from=2026-01-01');
      expect(unknown.status).toBe(400);
      // A range that is valid at any hour (the default end is one hour ago: today's midnight may be after it).
      const ok = await h.api('GET', `/admin/v1/anthropic/reconciliation?since=${daysAgo(3)}`);
      expect(ok.status).toBe(200);
    });
  });

  describe('Claude Code activity', () => {
    it('sums each coder over the range, matched to the user by email, beside their Tollgate spend', async () => {
      await h.api('POST', '/admin/v1/anthropic/sync', {
        body: { since: new Date(Date.now() - DAY).toISOString().slice(0, 10), until: tomorrow() },
      });
      const activity = await h.api('GET', '/admin/v1/anthropic/claude-code');
      expect(activity.status).toBe(200);
      const bob = activity.json.actors.find((a: { actor: string }) => a.actor === 'bob@example.com');
      expect(bob).toMatchObject({
        actor_kind: 'user',
        days: 2,
        sessions: 5,
        lines_added: 50,
        lines_removed: 5,
        commits: 2,
        tool_accepted: 10,
        tool_rejected: 2,
        estimated_micro_usd: 525_000,
        user: 'bob',
      });
      const spent = await h.api('GET', '/admin/v1/usage?by=user&since=7d');
      const bobSpend = spent.json.items.find((r: { user: string }) => r.user === 'bob');
      expect(bob.tollgate_micro_usd).toBe(bobSpend.cost_micro_usd);
      expect(bob.tollgate_micro_usd).toBeGreaterThan(0);
      const eve = activity.json.actors.find((a: { actor: string }) => a.actor === 'eve@example.com');
      expect(eve).toMatchObject({ user: null, user_id: null, tollgate_micro_usd: null, sessions: 1 });
    });

    it('an organisation without the report still syncs the rest, keeping what was imported', async () => {
      h.fake.claudeCode.setNoAccess(true);
      try {
        const synced = await h.api('POST', '/admin/v1/anthropic/sync', {
          body: { since: today(), until: tomorrow() },
        });
        expect(synced.status).toBe(200);
        expect(synced.json.imported.claude_code_rows).toBeNull();
        expect(synced.json.imported.usage_rows).toBeGreaterThan(0);
      } finally {
        h.fake.claudeCode.setNoAccess(false);
      }
      const activity = await h.api('GET', '/admin/v1/anthropic/claude-code');
      expect(activity.json.actors.map((a: { actor: string }) => a.actor).sort()).toEqual([
        'bob@example.com',
        'eve@example.com',
      ]);
    });
  });

  describe('spend limits through the admin API', () => {
    it('shows, sets in cents as strings, changes nothing the second time; no access is said plainly', async () => {
      await h.api('PUT', '/admin/v1/budgets', {
        body: { scope: 'org', period: 'month', limit_usd: '123.456789' },
      });
      const shown = await h.api('GET', '/admin/v1/anthropic/limits');
      expect(shown.status).toBe(200);
      expect(shown.json.limits).toEqual([
        expect.objectContaining({
          scope: { type: 'organization' },
          tollgate_amount_cents: '12345',
          action: 'create',
        }),
      ]);
      const first = await h.api('POST', '/admin/v1/anthropic/limits/sync', { body: {} });
      expect(first.status).toBe(200);
      expect(first.json.changed).toHaveLength(1);
      expect(h.fake.spendLimits.limits()[0]?.amount).toBe('12345');
      const writes = h.fake.spendLimits.writes();
      const second = await h.api('POST', '/admin/v1/anthropic/limits/sync', { body: {} });
      expect(second.json.changed).toEqual([]);
      expect(h.fake.spendLimits.writes()).toBe(writes);

      h.fake.spendLimits.setNoAccess(true);
      try {
        const refused = await h.api('GET', '/admin/v1/anthropic/limits');
        expect(refused.status).toBe(403);
        expect(refused.json.error.message).toMatch(/has no access to spend limits/);
      } finally {
        h.fake.spendLimits.setNoAccess(false);
      }
    });
  });

  describe('the remote CLI', () => {
    it('runs `anthropic sync --server` and prints what the local CLI prints', async () => {
      const empty = await mkdtemp(join(tmpdir(), 'tollgate-remote-'));
      try {
        const range = ['--since', today(), '--until', tomorrow(), '--json'];
        const remote = await runCli(['--server', h.url, 'anthropic', 'sync', ...range], {
          TOLLGATE_HOME: join(empty, 'none'),
          TOLLGATE_ADMIN_TOKEN: h.adminToken,
        });
        expect(remote.stderr).toBe('');
        expect(remote.code).toBe(0);
        const local = await runCli(['anthropic', 'sync', ...range], {
          TOLLGATE_HOME: h.config.home,
          TOLLGATE_UPSTREAM_URL: h.fake.url,
          ...(schema ? { TOLLGATE_DATABASE_URL: schema.url } : {}),
        });
        expect(local.code).toBe(0);
        const strip = (text: string) => {
          const { last_sync_at: _at, ...rest } = JSON.parse(text) as Record<string, unknown>;
          return rest;
        };
        expect(strip(remote.stdout)).toEqual(strip(local.stdout));
        expect(findLeaks(remote.stdout + local.stdout, [ORG_KEY, STRAY_KEY, ADMIN_KEY])).toEqual([]);
      } finally {
        await rm(empty, { recursive: true, force: true });
      }
    });
  });
});
