// `tollgate anthropic claude-code` through the real CLI against the fake report: the table, --json,
// a malformed --day refused (a real day is the control), and no secret in any output.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { canaryAnthropicKey, findLeaks } from '../helpers/secrets.js';

const ADMIN_KEY = canaryAnthropicKey('admin01');
let fake: FakeUpstream;
let cli: CliHome;

beforeAll(async () => {
  fake = await startFakeUpstream();
  cli = await tempHome({ TOLLGATE_UPSTREAM_URL: fake.url });
  expect((await cli.run(['init'])).code).toBe(0);
  expect(
    (await cli.run(['credential', 'add', 'org-admin', '--provider', 'anthropic-admin'], { stdin: ADMIN_KEY }))
      .code,
  ).toBe(0);
  expect((await cli.run(['user', 'add', 'bob', '--email', 'bob@example.com'])).code).toBe(0);
  for (const [email, sessions] of [
    ['bob@example.com', 4],
    ['eve@example.com', 2],
  ] as const) {
    fake.claudeCode.add({
      date: '2026-12-01T00:00:00Z',
      actor: { type: 'user_actor', email_address: email },
      organization_id: 'org_fake_0001',
      customer_type: 'api',
      terminal_type: 'iTerm.app',
      core_metrics: {
        num_sessions: sessions,
        lines_of_code: { added: 40, removed: 4 },
        commits_by_claude_code: 2,
        pull_requests_by_claude_code: 1,
      },
      tool_actions: { edit_tool: { accepted: 7, rejected: 3 } },
      model_breakdown: [],
    });
  }
});
afterAll(async () => {
  await fake.close();
  await cli.cleanup();
});

describe('anthropic claude-code', () => {
  it('prints each actor with sessions, lines, commits, PRs, tool accept/reject and the Tollgate user', async () => {
    const out = await cli.run(['anthropic', 'claude-code', '--day', '2026-12-01']);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/bob@example\.com.*4.*\+40\/-4.*2.*1.*7\/3.*\$0\.00.*bob.*\$0\.00/);
    expect(out.stdout).toMatch(/eve@example\.com.*2.*—.*—/);
    const rows = await cli.json<Array<{ actor: string; tollgateUser: string | null }>>([
      'anthropic',
      'claude-code',
      '--day',
      '2026-12-01',
    ]);
    expect(rows.map((r) => [r.actor, r.tollgateUser])).toEqual([
      ['bob@example.com', 'bob'],
      ['eve@example.com', null],
    ]);
    expect(fake.served.at(-1)?.query.starting_at).toBe('2026-12-01');
  });

  it('refuses a malformed day before calling Anthropic', async () => {
    const before = fake.served.length;
    const bad = await cli.run(['anthropic', 'claude-code', '--day', '12/01/2026']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--day must be a UTC day as YYYY-MM-DD');
    expect(fake.served.length).toBe(before);
  });

  it('never prints a secret', () => {
    expect(findLeaks(cli.transcript(), [ADMIN_KEY])).toEqual([]);
  });
});
