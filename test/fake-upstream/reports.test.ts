// The fake's usage and cost reports: documented shapes and limits, paging by token, and figures equal to
// the Messages requests it served.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from './index.js';

const ADMIN = 'sk-ant-admin01-test-reports-0000000000000000000000000000adm1';
const KEY = 'sk-ant-api03-test-reports-00000000000000000000000000000000key1';
let fake: FakeUpstream;

beforeAll(async () => {
  fake = await startFakeUpstream();
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());

interface ReportBody {
  data: Array<{ starting_at: string; results: Array<Record<string, unknown>> }>;
  has_more: boolean;
  next_page: string | null;
  error: { message: string };
}

async function report(
  path: string,
  query: string,
  on: FakeUpstream = fake,
): Promise<{ status: number; body: ReportBody }> {
  const response = await fetch(`${on.url}/v1/organizations/${path}?${query}`, {
    headers: { 'x-api-key': ADMIN, 'anthropic-version': '2023-06-01' },
  });
  return { status: response.status, body: (await response.json()) as ReportBody };
}

async function message(outputTokens: number, on: FakeUpstream = fake): Promise<void> {
  const response = await fetch(`${on.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'claude-sonnet-4-6',
      max_tokens: 100,
      messages: [{ role: 'user', content: `hi [[fake output_tokens=${outputTokens}]]` }],
    }),
  });
  expect(response.status).toBe(200);
  await response.arrayBuffer();
}

const day = (offset: number) =>
  new Date(Math.floor(Date.now() / 86_400_000 + offset) * 86_400_000).toISOString();

describe('fake usage report', () => {
  it('groups the served requests by key and model, with the listed key id', async () => {
    fake.admin.addApiKey({ secret: KEY, id: 'apikey_reports1', name: 'k' });
    await message(5);
    await message(6);
    const { status, body } = await report(
      'usage_report/messages',
      `starting_at=${day(0)}&ending_at=${day(1)}&group_by[]=api_key_id&group_by[]=model`,
    );
    expect(status).toBe(200);
    expect(body.has_more).toBe(false);
    expect(body.next_page).toBeNull();
    expect(body.data).toHaveLength(1);
    const result = body.data[0]?.results[0] ?? {};
    expect(result).toMatchObject({
      api_key_id: 'apikey_reports1',
      model: 'claude-sonnet-4-6',
      output_tokens: 11,
      workspace_id: null,
      cache_creation: { ephemeral_1h_input_tokens: 0, ephemeral_5m_input_tokens: 0 },
      server_tool_use: { web_search_requests: 0 },
    });
    const served = fake.served.filter((r) => r.path === '/v1/messages');
    expect(result.uncached_input_tokens).toBe(served.reduce((n, r) => n + (r.usage?.input_tokens ?? 0), 0));
  });

  it('pages by an opaque token within the documented limits, and refuses beyond them', async () => {
    const first = await report('usage_report/messages', `starting_at=${day(-9)}&ending_at=${day(1)}`);
    expect(first.status).toBe(200);
    expect(first.body.data).toHaveLength(7); // 1d default
    expect(first.body.has_more).toBe(true);
    const second = await report(
      'usage_report/messages',
      `starting_at=${day(-9)}&ending_at=${day(1)}&page=${first.body.next_page}`,
    );
    expect(second.body.data).toHaveLength(3);
    expect(second.body.data[0]?.starting_at).toBe(new Date(Date.parse(day(-2))).toISOString());
    expect(second.body.has_more).toBe(false);
    const hourly = await report(
      'usage_report/messages',
      `starting_at=${day(-2)}&ending_at=${day(1)}&bucket_width=1h&limit=168`,
    );
    expect(hourly.body.data).toHaveLength(72);
    for (const [query, message] of [
      ['limit=32', 'limit: Input should be between 1 and 31'],
      ['bucket_width=1h&limit=169', 'limit: Input should be between 1 and 168'],
      ['page=bm9wZQ', 'page: invalid page token'],
      ['group_by[]=colour', 'group_by: unknown value colour'],
    ] as const) {
      const refused = await report(
        'usage_report/messages',
        `starting_at=${day(-9)}&ending_at=${day(1)}&${query}`,
      );
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toBe(message);
    }
  });

  it('leaves out requests newer than the lag', async () => {
    await message(5);
    fake.reports.setLagMs(60_000);
    const lagging = await report('usage_report/messages', `starting_at=${day(0)}&ending_at=${day(1)}`);
    expect(lagging.body.data[0]?.results).toEqual([]);
    fake.reports.setLagMs(0);
    const caught = await report('usage_report/messages', `starting_at=${day(0)}&ending_at=${day(1)}`);
    expect(caught.body.data[0]?.results).toHaveLength(1);
  });

  it('with no lag, reports a request served in the same millisecond as the report', async () => {
    // A frozen clock makes the served request and the report share one millisecond, as a fast machine
    // sometimes does (a CI run on Node 24 saw the request left out).
    const frozen = await startFakeUpstream({ now: () => Date.parse('2026-03-04T05:06:07.008Z') });
    try {
      await message(3, frozen);
      const { body } = await report(
        'usage_report/messages',
        'starting_at=2026-03-04T00:00:00Z&ending_at=2026-03-05T00:00:00Z',
        frozen,
      );
      expect(body.data[0]?.results).toMatchObject([{ output_tokens: 3 }]);
    } finally {
      await frozen.close();
    }
  });
});

describe('fake cost report', () => {
  it('answers cents as decimal strings per description, priced from the served usage', async () => {
    await message(10);
    const { status, body } = await report(
      'cost_report',
      `starting_at=${day(0)}&ending_at=${day(1)}&group_by[]=description`,
    );
    expect(status).toBe(200);
    const lines = (body.data[0]?.results ?? []) as Array<{ amount: string; token_type: string }>;
    const output = lines.find((l) => l.token_type === 'output_tokens');
    // 10 output tokens × $15 / MTok = 150 µUSD = 0.015 cents.
    expect(output).toMatchObject({ amount: '0.0150', currency: 'USD', cost_type: 'tokens' });
    for (const line of lines) expect(line.amount).toMatch(/^\d+\.\d{4}$/);
  });
});
