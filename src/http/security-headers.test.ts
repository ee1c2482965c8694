import { describe, expect, it } from 'vitest';
import { cameOverHttps, DASHBOARD_CSP, FORM_PAGE_CSP, NO_CONTENT_CSP } from './security-headers.js';

describe('cameOverHttps', () => {
  const behindProxy = { tlsSocket: false, protocol: 'https', trustProxy: true, publicHttps: true };

  it('trusts a forwarded https only from a trusted proxy for an https public URL', () => {
    expect(cameOverHttps(behindProxy)).toBe(true);
    expect(cameOverHttps({ ...behindProxy, trustProxy: false })).toBe(false);
    expect(cameOverHttps({ ...behindProxy, publicHttps: false })).toBe(false);
    expect(cameOverHttps({ ...behindProxy, protocol: 'http' })).toBe(false);
  });

  it('always counts a TLS socket', () => {
    expect(cameOverHttps({ tlsSocket: true, protocol: 'https', trustProxy: false, publicHttps: false })).toBe(
      true,
    );
  });
});

describe('content security policies', () => {
  it('forbid framing and inline script everywhere', () => {
    for (const csp of [DASHBOARD_CSP, FORM_PAGE_CSP, NO_CONTENT_CSP]) {
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    }
  });
});
