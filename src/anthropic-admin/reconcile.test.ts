import { describe, expect, it } from 'vitest';
import { createPriceBook } from '../pricing/models.js';
import { type LedgerFigures, priceReported, reconcile } from './reconcile.js';
import type { ReportedUsage } from './reports.js';

const book = createPriceBook({});
const price = (model: string) => book.lookup(model);
const HINT = 'sk-ant-api03-R2D...igAA';

function reported(apiKeyId: string, changes: Partial<ReportedUsage> = {}): ReportedUsage {
  return {
    day: '2026-12-01',
    apiKeyId,
    workspaceId: null,
    model: 'claude-sonnet-4-6',
    uncachedInputTokens: 100,
    cacheWrite5mTokens: 0,
    cacheWrite1hTokens: 0,
    cacheReadTokens: 0,
    outputTokens: 10,
    webSearchRequests: 0,
    ...changes,
  };
}

function ledger(changes: Partial<LedgerFigures> = {}): LedgerFigures {
  return {
    day: '2026-12-01',
    credentialId: 'cred_1',
    model: 'claude-sonnet-4-6',
    input_tokens: 100,
    output_tokens: 10,
    cache_write_5m_tokens: 0,
    cache_write_1h_tokens: 0,
    cache_read_tokens: 0,
    web_search_requests: 0,
    cost_micro_usd: 450, // 100 × 3 + 10 × 15
    ...changes,
  };
}

const keys = [
  { id: 'apikey_1', name: 'org key', partial_key_hint: HINT },
  { id: 'apikey_2', name: 'console', partial_key_hint: 'sk-ant-api03-zzz...zzzz' },
];
const credentials = [{ id: 'cred_1', name: 'org-key', hint: HINT }];

describe('reconcile', () => {
  it('matches a key to its credential through the hint: equal figures, no drift', () => {
    const rows = reconcile({
      reported: [reported('apikey_1')],
      ledger: [ledger()],
      keys,
      credentials,
      price,
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      credential: 'org-key',
      api_key_id: 'apikey_1',
      drift_tokens: 0,
      drift_micro_usd: 0,
      flag: null,
    });
    expect(rows[0]?.anthropic.cost_micro_usd).toBe(450);
  });

  it('reports Anthropic minus Tollgate, in tokens and micro-USD, dated and bare ids on one row', () => {
    const rows = reconcile({
      reported: [reported('apikey_1', { model: 'claude-sonnet-4-6', outputTokens: 17, cacheReadTokens: 7 })],
      ledger: [ledger()],
      keys,
      credentials,
      price,
    });
    // +7 output (7 × 15 µUSD) and +7 cache reads (7 × 0.3 = 2.1 µUSD): 107.1 → 107.
    expect(rows.map((r) => [r.drift_tokens, r.drift_micro_usd, r.flag])).toEqual([[14, 107, 'drift']]);
  });

  it('flags a key that matches no credential, and shows Tollgate traffic Anthropic did not report', () => {
    const rows = reconcile({
      reported: [reported('apikey_2')],
      ledger: [ledger({ day: '2026-12-02' })],
      keys,
      credentials,
      price,
    });
    expect(
      rows.map((r) => [r.day, r.credential, r.api_key_name, r.drift_tokens, r.drift_micro_usd, r.flag]),
    ).toEqual([
      ['2026-12-01', null, 'console', 110, 450, 'not_through_tollgate'],
      ['2026-12-02', 'org-key', 'org key', -110, -450, 'drift'],
    ]);
  });

  it('leaves the dollar drift of an unpriced model null, beside a priced one', () => {
    const rows = reconcile({
      reported: [reported('apikey_1', { model: 'claude-unknown-9' }), reported('apikey_1')],
      ledger: [ledger()],
      keys,
      credentials,
      price,
    });
    expect(rows.map((r) => [r.model, r.drift_micro_usd, r.flag])).toEqual([
      ['claude-sonnet-4-6', 0, null],
      ['claude-unknown-9', null, 'unpriced'],
    ]);
  });
});

describe('priceReported', () => {
  it('prices a day at base rates even past a long-context threshold (per-request tiers are unknown)', () => {
    const sonnet45 = book.lookup('claude-sonnet-4-5');
    if (sonnet45 === null) throw new Error('claude-sonnet-4-5 is priced');
    const tokens = {
      input_tokens: 300_000,
      output_tokens: 0,
      cache_write_5m_tokens: 0,
      cache_write_1h_tokens: 0,
      cache_read_tokens: 0,
      web_search_requests: 0,
    };
    expect(priceReported(sonnet45, tokens)).toBe(900_000);
  });
});
