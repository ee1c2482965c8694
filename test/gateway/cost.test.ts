// Cost is exact: for a mix of models, cache writes (5 m and 1 h), cache reads, streaming and not,
// the ledger's cost equals an independent computation from what the fake upstream says it served.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServedRecord } from '../fake-upstream/index.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

// $ per million tokens, from the published price table — written out here, independently of src/pricing.
const PRICES: Record<string, { input: number; output: number }> = {
  'claude-opus-4-5': { input: 5, output: 25 },
  'claude-opus-4-1': { input: 15, output: 75 },
  'claude-sonnet-4-6': { input: 3, output: 15 },
  'claude-haiku-4-5': { input: 1, output: 5 },
  'claude-3-5-haiku': { input: 0.8, output: 4 },
};

/** µUSD, rounded once (half up), using exact rational arithmetic in units of 1e-8 µUSD. */
function expectedCost(model: string, u: NonNullable<ServedRecord['usage']>): number {
  const p = PRICES[model.replace(/-\d{8}$/, '')];
  if (!p) throw new Error(`no price for ${model}`);
  // $/MTok × 100 is an integer for every listed price; tokens × ($/MTok × 100) is in units of 1e-8 $/… = 1e-2 µUSD.
  const cents = (usd: number) => BigInt(Math.round(usd * 100));
  const inp = cents(p.input);
  // Scaled by 40 so every multiplier (1.25, 2, 0.1) is a whole number: the sum is exact.
  const scaled =
    BigInt(u.input_tokens) * inp * 40n +
    BigInt(u.cache_creation_5m) * inp * 50n +
    BigInt(u.cache_creation_1h) * inp * 80n +
    BigInt(u.cache_read) * inp * 4n +
    BigInt(u.output_tokens) * cents(p.output) * 40n +
    BigInt(u.web_search_requests) * 10_000n * 100n * 40n; // $10 / 1,000 = 10,000 µUSD each
  // scaled is in units of (1/100 µUSD per token-price) × 40 → divide by 4,000 to get µUSD, half up.
  return Number((scaled + 2_000n) / 4_000n);
}

describe('exact cost', () => {
  let h: Harness;
  let key: string;

  beforeAll(async () => {
    h = await startHarness();
    await h.orgCredential();
    key = await h.key();
  });
  afterAll(() => h.close());

  const longSystem = (n: number) => `You are a careful assistant. ${'Context sentence number x. '.repeat(n)}`;

  it('matches the upstream record for every call, to the micro-dollar', async () => {
    const client = h.client(key);
    const calls: Array<() => Promise<unknown>> = [];
    for (const model of [
      'claude-opus-4-5',
      'claude-opus-4-1-20250805',
      'claude-sonnet-4-6',
      'claude-haiku-4-5-20251001',
      'claude-3-5-haiku-20241022',
    ]) {
      for (const stream of [false, true]) {
        for (const ttl of ['5m', '1h'] as const) {
          const params = {
            model,
            max_tokens: 300,
            system: [
              {
                type: 'text' as const,
                text: `${ttl} ${longSystem(400 + model.length)}`,
                cache_control: { type: 'ephemeral' as const, ttl },
              },
            ],
            messages: [
              {
                role: 'user' as const,
                content: `question for ${model} ${stream} ${ttl} [[fake output_tokens=137]]`,
              },
            ],
          };
          // First call writes the cache, the second reads it.
          for (let i = 0; i < 2; i++) {
            calls.push(() =>
              stream ? client.messages.stream(params).finalMessage() : client.messages.create(params),
            );
          }
        }
      }
    }
    for (const call of calls) await call();

    const rows = await h.installation.db.kysely
      .selectFrom('usage_records')
      .selectAll()
      .where('endpoint', '=', 'messages')
      .orderBy('at')
      .execute();
    const served = h.fake.served.filter((s) => s.path === '/v1/messages');
    expect(rows).toHaveLength(calls.length);
    expect(served).toHaveLength(calls.length);
    const byRequestId = new Map(served.map((s) => [s.requestId, s]));
    let writes5m = 0;
    let writes1h = 0;
    let reads = 0;
    for (const row of rows) {
      const s = byRequestId.get(row.upstream_request_id ?? '');
      if (!s?.usage || !s.model) throw new Error(`no upstream record for ${row.id}`);
      expect(row.cost_micro).toBe(expectedCost(s.model, s.usage));
      expect(row).toMatchObject({
        input_tokens: s.usage.input_tokens,
        output_tokens: s.usage.output_tokens,
        cache_write_5m_tokens: s.usage.cache_creation_5m,
        cache_write_1h_tokens: s.usage.cache_creation_1h,
        cache_read_tokens: s.usage.cache_read,
      });
      writes5m += s.usage.cache_creation_5m;
      writes1h += s.usage.cache_creation_1h;
      reads += s.usage.cache_read;
    }
    // The mix really exercised every kind of cache token.
    expect(writes5m).toBeGreaterThan(0);
    expect(writes1h).toBeGreaterThan(0);
    expect(reads).toBeGreaterThan(0);
  });
});
