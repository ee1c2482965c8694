import { describe, expect, it } from 'vitest';
import { corsHeaders, preflightHeaders, varyWithOrigin } from './cors.js';

const allowed = new Set(['https://app.example.com']);

describe('corsHeaders', () => {
  it('echoes a listed origin only, never with credentials', () => {
    const headers = new Map(corsHeaders(allowed, 'https://app.example.com'));
    expect(headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(headers.has('access-control-allow-credentials')).toBe(false);
    for (const other of [undefined, 'https://evil.example.com', 'https://app.example.com.evil', 'null', '*'])
      expect(corsHeaders(allowed, other), String(other)).toEqual([]);
  });
});

describe('preflightHeaders', () => {
  it('answers a preflight from a listed origin; nothing for others or for non-preflights', () => {
    const answer = new Map(preflightHeaders(allowed, 'https://app.example.com', 'POST') ?? []);
    expect(answer.get('access-control-allow-methods')).toContain('DELETE');
    expect(answer.get('access-control-allow-headers')).toContain('x-api-key');
    expect(preflightHeaders(allowed, 'https://evil.example.com', 'POST')).toBeNull();
    expect(preflightHeaders(allowed, 'https://app.example.com', undefined)).toBeNull();
  });
});

describe('varyWithOrigin', () => {
  it('adds Origin once to what is there', () => {
    expect(varyWithOrigin(undefined)).toBe('Origin');
    expect(varyWithOrigin('accept-encoding')).toBe('accept-encoding, Origin');
    expect(varyWithOrigin('accept-encoding, origin')).toBe('accept-encoding, origin');
    expect(varyWithOrigin(['accept-encoding', 'cookie'])).toBe('accept-encoding, cookie, Origin');
    expect(varyWithOrigin('*')).toBe('*');
  });
});
