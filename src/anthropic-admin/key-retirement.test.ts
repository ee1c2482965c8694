import { describe, expect, it } from 'vitest';
import { matchOldKey, retryDelayMs } from './key-retirement.service.js';
import type { ApiKey } from './schemas.js';

const key = (id: string, hint: string | null, status: ApiKey['status'] = 'active'): ApiKey => ({
  id,
  type: 'api_key',
  name: id,
  workspace_id: null,
  created_at: '2026-12-01T00:00:00Z',
  partial_key_hint: hint,
  status,
});

describe('matchOldKey', () => {
  const hint = 'sk-ant-api03-R2D...igAA';
  it('finds the one key with the hint (inactive ones too: retiring them is a no-op)', () => {
    const keys = [
      key('apikey_a', 'sk-ant-api03-XXX...zzzz'),
      key('apikey_b', hint, 'inactive'),
      key('apikey_c', null),
    ];
    expect(matchOldKey(keys, hint)).toMatchObject({ ok: true, key: { id: 'apikey_b' } });
  });
  it('refuses no match and an ambiguous match; archived keys do not count', () => {
    expect(matchOldKey([key('apikey_a', hint, 'archived')], hint)).toMatchObject({ ok: false });
    const two = matchOldKey([key('apikey_a', hint), key('apikey_b', hint)], hint);
    expect(two).toMatchObject({ ok: false });
    expect(two.ok ? '' : two.message).toContain('apikey_a, apikey_b');
  });
});

describe('retryDelayMs', () => {
  it('waits a minute, doubling, at most an hour', () => {
    expect([1, 2, 3, 7, 50].map(retryDelayMs)).toEqual([60_000, 120_000, 240_000, 3_600_000, 3_600_000]);
  });
});
