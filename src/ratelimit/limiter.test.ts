import { describe, expect, it } from 'vitest';
import { createRateLimiter, type RateLimits } from './limiter.js';

const none: RateLimits = { rpm: null, inputTpm: null, outputTpm: null, concurrency: null };
const t0 = Date.UTC(2026, 10, 22, 12);

describe('rate limiter', () => {
  it('allows at most N requests in any rolling 60 s', () => {
    const limiter = createRateLimiter();
    const limits = { ...none, rpm: 3 };
    const at = [0, 10_000, 20_000];
    for (const dt of at) {
      const r = limiter.admit('k', limits, t0 + dt, 0, 0);
      expect(r.ok).toBe(true);
      if (r.ok) limiter.finish(r.ticket, t0 + dt, 0, 0);
    }
    const refused = limiter.admit('k', limits, t0 + 59_999, 0, 0);
    expect(refused).toMatchObject({ ok: false, kind: 'requests', retryAfterS: 1 });
    expect(refused.headers['anthropic-ratelimit-requests-remaining']).toBe('0');
    const early = limiter.admit('k', limits, t0 + 30_000, 0, 0);
    expect(early).toMatchObject({ ok: false, retryAfterS: 30 });
    expect(limiter.admit('k', limits, t0 + 60_000, 0, 0).ok).toBe(true); // the first one left the window
    expect(limiter.admit('k', limits, t0 + 60_001, 0, 0).ok).toBe(false); // the second one has not
  });

  it('limits requests in flight and frees the slot on finish', () => {
    const limiter = createRateLimiter();
    const limits = { ...none, concurrency: 2 };
    const a = limiter.admit('k', limits, t0, 0, 0);
    const b = limiter.admit('k', limits, t0, 0, 0);
    expect(limiter.admit('k', limits, t0, 0, 0)).toMatchObject({ ok: false, kind: 'concurrency' });
    if (!a.ok || !b.ok) throw new Error('expected admissions');
    limiter.finish(a.ticket, t0, 0, 0);
    limiter.finish(a.ticket, t0, 0, 0); // idempotent
    expect(limiter.admit('k', limits, t0, 0, 0).ok).toBe(true);
    expect(limiter.admit('k', limits, t0, 0, 0).ok).toBe(false);
  });

  it('charges output at max_tokens and corrects to the actual figure', () => {
    const limiter = createRateLimiter();
    const limits = { ...none, outputTpm: 1000 };
    const a = limiter.admit('k', limits, t0, 0, 800);
    if (!a.ok) throw new Error('expected admission');
    const b = limiter.admit('k', limits, t0 + 1000, 0, 800);
    expect(b).toMatchObject({ ok: false, kind: 'output-tokens' });
    expect(b.headers['anthropic-ratelimit-output-tokens-limit']).toBe('1000');
    limiter.finish(a.ticket, t0 + 1000, 0, 100);
    expect(limiter.admit('k', limits, t0 + 1000, 0, 800).ok).toBe(true);
  });

  it('frees input tokens as they leave the rolling window', () => {
    const limiter = createRateLimiter();
    const limits = { ...none, inputTpm: 1000 };
    const a = limiter.admit('k', limits, t0, 900, 0);
    if (!a.ok) throw new Error('expected admission');
    limiter.finish(a.ticket, t0, 900, 0);
    const refused = limiter.admit('k', limits, t0 + 30_000, 200, 0);
    // 5 s slices; the one straddling the window's start still counts: freed 60-65 s later.
    expect(refused).toMatchObject({ ok: false, kind: 'input-tokens', retryAfterS: 35 });
    expect(limiter.admit('k', limits, t0 + 60_000, 200, 0).ok).toBe(false);
    expect(limiter.admit('k', limits, t0 + 65_000, 200, 0).ok).toBe(true);
  });

  it('keeps keys apart', () => {
    const limiter = createRateLimiter();
    const limits = { ...none, rpm: 1 };
    expect(limiter.admit('a', limits, t0, 0, 0).ok).toBe(true);
    expect(limiter.admit('b', limits, t0, 0, 0).ok).toBe(true);
    expect(limiter.admit('a', limits, t0, 0, 0).ok).toBe(false);
  });
});

describe('rate limiter with very large RPM limits', () => {
  it('uses bounded memory and still never admits more than N in a rolling minute', () => {
    const limiter = createRateLimiter();
    const limits = { ...none, rpm: 100_000_000 };
    expect(limiter.admit('big', limits, t0, 0, 0).ok).toBe(true);
    const small = { ...none, rpm: 20_000 }; // above EXACT_RPM_MAX: sliced
    let admitted = 0;
    for (let i = 0; i < 30_000; i++) {
      const r = limiter.admit('k', small, t0 + i, 0, 0);
      if (r.ok) admitted++;
    }
    expect(admitted).toBe(20_000);
    // A minute (and at most one 5 s slice) after the first admissions their slots are free again.
    expect(limiter.admit('k', small, t0 + 65_000, 0, 0).ok).toBe(true);
  });
});

describe('rate limiter lanes', () => {
  it('keeps requests, input and output of one key apart in its sliced minute', () => {
    const limiter = createRateLimiter();
    const limits = { ...none, rpm: 2_000, inputTpm: 1_000, outputTpm: 500 };
    const a = limiter.admit('k', limits, t0, 900, 400);
    if (!a.ok) throw new Error('expected admission');
    expect(a.headers['anthropic-ratelimit-requests-remaining']).toBe('1999');
    // Output is the tight lane: 400 of 500 charged, input has 100 left.
    expect(limiter.admit('k', limits, t0 + 1, 50, 200)).toMatchObject({ ok: false, kind: 'output-tokens' });
    expect(limiter.admit('k', limits, t0 + 1, 200, 50)).toMatchObject({ ok: false, kind: 'input-tokens' });
    limiter.finish(a.ticket, t0 + 2, 100, 10);
    const b = limiter.admit('k', limits, t0 + 3, 800, 450);
    expect(b.ok).toBe(true);
    // The two requests refused for tokens took their request slots first: they count.
    if (b.ok) expect(b.headers['anthropic-ratelimit-requests-remaining']).toBe('1996');
  });

  it('starts the request window afresh when the limit changes, keeping token history', () => {
    const limiter = createRateLimiter();
    const before = { ...none, rpm: 1_001, outputTpm: 100 };
    for (let i = 0; i < 1_001; i++) expect(limiter.admit('k', before, t0 + i, 0, 0).ok).toBe(true);
    expect(limiter.admit('k', before, t0 + 1_001, 0, 100).ok).toBe(false);
    const charged = limiter.admit('k', { ...before, rpm: 1_002 }, t0 + 1_002, 0, 100);
    expect(charged.ok).toBe(true);
    expect(limiter.admit('k', { ...before, rpm: 1_002 }, t0 + 1_003, 0, 1)).toMatchObject({
      ok: false,
      kind: 'output-tokens',
    });
  });
});

describe('rate limiter memory', () => {
  it('forgets a key once nothing is in flight and its last minute has passed', () => {
    const limiter = createRateLimiter();
    const limits = { ...none, rpm: 1, outputTpm: 100 };
    const a = limiter.admit('idle', limits, t0, 0, 50);
    const b = limiter.admit('busy', { ...none, concurrency: 1 }, t0, 0, 0);
    if (!a.ok || !b.ok) throw new Error('expected admissions');
    limiter.finish(a.ticket, t0 + 1_000, 0, 40);
    expect(limiter.forgetIdle(t0 + 60_000)).toBe(0); // within its minute: still counts
    expect(limiter.admit('idle', limits, t0 + 59_000, 0, 0).ok).toBe(false);
    expect(limiter.forgetIdle(t0 + 130_000)).toBe(1); // `busy` has a request in flight
    expect(limiter.size()).toBe(1);
    expect(limiter.admit('busy', { ...none, concurrency: 1 }, t0 + 130_000, 0, 0).ok).toBe(false);
    expect(limiter.admit('idle', limits, t0 + 130_000, 0, 100).ok).toBe(true);
  });
});

describe('rate limiter in two steps (requests before the body, tokens after)', () => {
  it('takes the request and concurrency slots without any token figure', () => {
    const limiter = createRateLimiter();
    const limits = { ...none, rpm: 2, concurrency: 1 };
    const a = limiter.admitRequest('k', limits, t0);
    if (!a.ok) throw new Error('expected admission');
    expect(a.headers['anthropic-ratelimit-requests-remaining']).toBe('1');
    expect(limiter.admitRequest('k', limits, t0)).toMatchObject({ ok: false, kind: 'concurrency' });
    limiter.finish(a.ticket, t0, 0, 0);
    const b = limiter.admitRequest('k', limits, t0 + 1);
    expect(b.ok).toBe(true);
    if (b.ok) limiter.finish(b.ticket, t0 + 1, 0, 0);
    expect(limiter.admitRequest('k', limits, t0 + 2)).toMatchObject({ ok: false, kind: 'requests' });
  });

  it('a request refused for tokens keeps its request slot and frees its concurrency slot once finished', () => {
    const limiter = createRateLimiter();
    const limits = { ...none, rpm: 3, outputTpm: 100, concurrency: 1 };
    const a = limiter.admitRequest('k', limits, t0);
    if (!a.ok) throw new Error('expected admission');
    expect(limiter.admitTokens(a.ticket, limits, t0, 0, 80)).toBeNull();
    limiter.finish(a.ticket, t0, 0, 80);
    const b = limiter.admitRequest('k', limits, t0 + 1);
    if (!b.ok) throw new Error('expected admission');
    expect(limiter.admitTokens(b.ticket, limits, t0 + 1, 0, 80)).toMatchObject({
      ok: false,
      kind: 'output-tokens',
    });
    // Still in flight until finished; finishing an uncharged ticket changes no token lane.
    expect(limiter.admitRequest('k', limits, t0 + 2)).toMatchObject({ ok: false, kind: 'concurrency' });
    limiter.finish(b.ticket, t0 + 2, 0, 0);
    limiter.finish(b.ticket, t0 + 2, 0, 0); // idempotent
    const c = limiter.admitRequest('k', limits, t0 + 3);
    if (!c.ok) throw new Error('expected admission');
    expect(c.headers['anthropic-ratelimit-requests-remaining']).toBe('0'); // b counted
    expect(limiter.admitTokens(c.ticket, limits, t0 + 3, 0, 20)).toBeNull(); // 80 + 20 fits
    limiter.finish(c.ticket, t0 + 3, 0, 20);
    expect(limiter.admitRequest('k', limits, t0 + 4)).toMatchObject({ ok: false, kind: 'requests' });
  });
});
