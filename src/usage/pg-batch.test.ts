import { describe, expect, it } from 'vitest';
import type { SpendDelta } from './ledger-batch.js';
import { compareSpendKeys, LEDGER_STATEMENT, ledgerParameters } from './pg-batch.js';

const spend = (scope_type: SpendDelta['scope_type'], scope_id: string, period_start = 0): SpendDelta => ({
  scope_type,
  scope_id,
  period: 'day',
  period_start,
  spent_micro: 1,
});

describe('the PostgreSQL ledger statement', () => {
  it('has one parameter per column array, numbered without gaps', () => {
    const numbers = [...LEDGER_STATEMENT.matchAll(/\$(\d+)::/g)].map((m) => Number(m[1]));
    const params = ledgerParameters({ records: [], spend: [], rollups: [], daily: [] });
    expect(numbers).toEqual(params.map((_, i) => i + 1));
    expect(params.every((column) => Array.isArray(column) && column.length === 0)).toBe(true);
  });

  it('passes spend rows in primary-key order whatever order the batch met them in', () => {
    const batch = {
      records: [],
      rollups: [],
      daily: [],
      spend: [
        spend('user', 'u2'),
        spend('org', 'o1'),
        spend('key', 'k9'),
        spend('key', 'k1', 5),
        spend('key', 'k1'),
      ],
    };
    const params = ledgerParameters(batch);
    const ids = params.at(-4);
    expect(ids).toEqual(['k1', 'k1', 'k9', 'o1', 'u2']);
    expect(params.at(-2)).toEqual([0, 5, 0, 0, 0]);
    expect([...batch.spend].sort(compareSpendKeys).map((s) => s.scope_type)).toEqual([
      'key',
      'key',
      'key',
      'org',
      'user',
    ]);
  });
});
