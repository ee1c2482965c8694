// The Claude Code analytics import: Anthropic's per-actor day (from the fake, paged) beside the Tollgate
// spend of the user whose email matches; an actor without a Tollgate user shows none; a bad day refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeClaudeCodeRecord } from '../fake-upstream/index.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

const ADMIN_KEY = canaryAnthropicKey('admin01');
let h: Harness;
const today = new Date().toISOString().slice(0, 10);

function record(email: string, day: string, n: number): FakeClaudeCodeRecord {
  return {
    date: `${day}T00:00:00Z`,
    actor: { type: 'user_actor', email_address: email },
    organization_id: 'org_fake_0001',
    customer_type: 'api',
    terminal_type: 'vscode',
    core_metrics: {
      num_sessions: n,
      lines_of_code: { added: 100 * n, removed: 10 * n },
      commits_by_claude_code: n,
      pull_requests_by_claude_code: 1,
    },
    tool_actions: { edit_tool: { accepted: 5 * n, rejected: n }, write_tool: { accepted: 2, rejected: 1 } },
    model_breakdown: [
      {
        model: 'claude-sonnet-4-6',
        tokens: { input: 1000, output: 500, cache_read: 0, cache_creation: 0 },
        estimated_cost: { currency: 'USD', amount: 150 },
      },
    ],
  };
}

beforeAll(async () => {
  h = await startHarness();
  await h.orgCredential();
  await h.services.credentials.add(h.admin, {
    name: 'org-admin',
    provider: 'anthropic-admin',
    secret: ADMIN_KEY,
    validate: false,
  });
  await h.services.users.add(h.admin, {
    name: 'alice',
    email: 'Alice@example.com',
    monthlyBudgetMicro: null,
  });
  // Alice spends through Tollgate today.
  const key = await h.key({ user: 'alice' });
  const answer = await h.client(key).messages.create({
    model: 'claude-sonnet-4-6',
    max_tokens: 50,
    messages: [{ role: 'user', content: 'hi' }],
  });
  expect(answer.type).toBe('message');
  await h.gateway.deps.ledger.drain();
  h.fake.claudeCode.add(record('alice@example.com', today, 3));
  h.fake.claudeCode.add(record('stranger@example.com', today, 1));
  h.fake.claudeCode.add(record('alice@example.com', '2020-01-01', 9));
});
afterAll(() => h.close());

describe('anthropic claude-code', () => {
  it("lists each actor's day beside the matching user's Tollgate spend", async () => {
    const rows = await h.services.claudeCode.day(today);
    expect(rows).toHaveLength(2);
    const alice = rows.find((r) => r.actor === 'alice@example.com');
    expect(alice).toMatchObject({
      sessions: 3,
      linesAdded: 300,
      linesRemoved: 30,
      commits: 3,
      pullRequests: 1,
      toolAccepted: 17,
      toolRejected: 4,
      estimatedCostCents: 150,
      tollgateUser: 'alice',
    });
    expect(alice?.tollgateMicroUsd).toBeGreaterThan(0);
    expect(rows.find((r) => r.actor === 'stranger@example.com')).toMatchObject({
      tollgateUser: null,
      tollgateMicroUsd: null,
    });
    const call = h.fake.served.filter((r) => r.path === '/v1/organizations/usage_report/claude_code').at(-1);
    expect(call?.query.starting_at).toBe(today);
    expect(call?.apiKey).toBe(ADMIN_KEY);
  });

  it('another day shows only its records, and no Tollgate spend there', async () => {
    const rows = await h.services.claudeCode.day('2020-01-01');
    expect(rows.map((r) => [r.actor, r.sessions, r.tollgateMicroUsd])).toEqual([['alice@example.com', 9, 0]]);
  });

  it('refuses a day that is not YYYY-MM-DD before calling Anthropic (a real day is the control above)', async () => {
    const before = h.fake.served.length;
    await expect(h.services.claudeCode.day('2026-02-30')).rejects.toThrow('--day must be a UTC day');
    await expect(h.services.claudeCode.day('yesterday')).rejects.toThrow('--day must be a UTC day');
    expect(h.fake.served.length).toBe(before);
  });
});
