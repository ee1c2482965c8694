import { describe, expect, it } from 'vitest';
import type { SubjectInfo } from '../gateway/key-cache.js';
import type { UsageRecord } from '../usage/ledger.js';
import { OTHER } from './names.js';
import { CounterFamily, createMetricsStore, HistogramSeries, LabelCap, refusalKind, USAGE } from './store.js';

function subject(userName: string, teamName: string | null = 'platform'): SubjectInfo {
  return {
    userId: `usr_${userName}`,
    userName,
    role: 'member',
    teamId: teamName === null ? null : `team_${teamName}`,
    teamName,
    userLimits: {},
    teamLimits: {},
    orgLimits: {},
    byok: 'preferred',
  };
}

function record(over: Partial<UsageRecord> = {}): UsageRecord {
  return {
    id: 'req_1',
    at: 0,
    endpoint: 'messages',
    key_id: 'key_1',
    user_id: 'usr_a',
    team_id: null,
    service_user_id: null,
    credential_id: 'cred_1',
    model: 'claude-haiku-4-5',
    input_tokens: 10,
    output_tokens: 5,
    cache_write_5m_tokens: 2,
    cache_write_1h_tokens: 1,
    cache_read_tokens: 3,
    web_search_requests: 0,
    cost_micro: 123,
    saved_micro: 4,
    latency_ms: 10,
    status: 200,
    outcome: 'ok',
    upstream_request_id: null,
    stream: 0,
    partial: 0,
    estimated: 0,
    attempts: 1,
    ...over,
  };
}

describe('LabelCap', () => {
  it('keeps the first max values and folds the rest into other', () => {
    const cap = new LabelCap(2);
    expect(cap.label('a')).toBe('a');
    expect(cap.label('b')).toBe('b');
    expect(cap.label('c')).toBe(OTHER);
    expect(cap.label('a')).toBe('a');
    expect(cap.overflowed).toBe(1);
    expect(cap.size).toBe(2);
  });
});

describe('CounterFamily', () => {
  it('stops making series at its bound and counts the rest in one all-other series', () => {
    const f = new CounterFamily(['x'], 1, 2);
    for (const k of ['a', 'b', 'c', 'd']) {
      const v = f.at(k, k);
      v[0] = (v[0] as number) + 1;
    }
    expect(f.series.size).toBe(3);
    const other = [...f.series.values()].find((s) => s.labels[0] === OTHER);
    expect(other?.values[0]).toBe(2);
  });
});

describe('HistogramSeries', () => {
  it('puts a value in the first bucket whose bound it does not exceed (le), the rest above', () => {
    const h = new HistogramSeries([], [1, 2]);
    for (const v of [0.5, 1, 1.5, 2, 3]) h.observe(v);
    expect(Array.from(h.data.subarray(0, 3))).toEqual([2, 2, 1]);
    expect(h.count).toBe(5);
    expect(h.sum).toBe(8);
  });
});

describe('the store as observer', () => {
  it('adds a negative saving (cache writes dearer than reads saved) to the extra column: neither shrinks', () => {
    const store = createMetricsStore({ maxUsers: 1 });
    store.observer.call(subject('alice'), record({ saved_micro: 4 }));
    store.observer.call(subject('alice'), record({ saved_micro: -5 }));
    const values = [...store.usage.series.values()][0]?.values;
    expect(values?.[USAGE.savedMicro]).toBe(4);
    expect(values?.[USAGE.extraMicro]).toBe(5);
  });

  it('sums usage records per model, team and user, with users past the cap as other', () => {
    const store = createMetricsStore({ maxUsers: 1 });
    store.observer.call(subject('alice'), record());
    store.observer.call(subject('alice'), record());
    store.observer.call(
      subject('bob', null),
      record({ status: 529, outcome: 'upstream_error', cost_micro: 0 }),
    );
    const series = [...store.usage.series.values()];
    expect(series.map((s) => s.labels)).toEqual([
      ['claude-haiku-4-5', 'platform', 'alice'],
      ['claude-haiku-4-5', 'none', OTHER],
    ]);
    // Columns: input, output, cache read, 5 m and 1 h writes, cost, saved, records, extra (none yet).
    expect(Array.from(series[0]?.values ?? [])).toEqual([20, 10, 6, 4, 2, 246, 8, 2, 0]);
    expect([...store.upstreamErrors.series.values()].map((s) => [s.labels, s.values[0]])).toEqual([
      [['messages', '529'], 1],
    ]);
    // gen_ai token usage: input counts cache reads and writes; only successful Messages calls.
    const input = store.genaiTokens.series.get(`claude-haiku-4-5\u0001input`);
    expect(input?.count).toBe(2);
    expect(input?.sum).toBe(2 * (10 + 3 + 2 + 1));
  });

  it('splits a request into overhead and upstream time, and counts refusals', () => {
    const store = createMetricsStore({ maxUsers: 10 });
    store.observer.end('messages', 200, subject('alice'), 'claude-haiku-4-5', 120, 100, null);
    store.observer.end('messages', 429, subject('alice'), null, 3, 0, 'budget');
    const overhead = store.overhead.series.get('messages');
    expect(overhead?.count).toBe(2);
    expect(overhead?.sum).toBeCloseTo(0.023, 9);
    const upstream = store.upstream.series.get('messages');
    expect(upstream?.count).toBe(1);
    expect(upstream?.sum).toBeCloseTo(0.1, 9);
    expect([...store.refusals.series.values()].map((s) => [s.labels, s.values[0]])).toEqual([
      [['messages', 'budget', 'platform'], 1],
    ]);
    expect(store.subjects.size).toBe(1);
    expect(store.teamSubjects.size).toBe(1);
  });
});

describe('refusalKind', () => {
  it('tells the kinds apart', () => {
    expect(refusalKind({ status: 401, type: 'authentication_error', message: '' })).toBe('auth');
    expect(
      refusalKind({
        status: 429,
        type: 'rate_limit_error',
        message: '',
        details: { error_code: 'enforced_spend_limit_reached' },
      }),
    ).toBe('budget');
    expect(refusalKind({ status: 429, type: 'rate_limit_error', message: '' })).toBe('rate_limit');
    expect(refusalKind({ status: 503, type: 'overloaded_error', message: '' })).toBe('overload');
    expect(refusalKind({ status: 403, type: 'permission_error', message: '' })).toBe('policy');
    expect(refusalKind({ status: 400, type: 'invalid_request_error', message: '' })).toBe('invalid');
  });
});
