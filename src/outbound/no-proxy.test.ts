import { describe, expect, it } from 'vitest';
import { bypassesProxy, parseNoProxy } from './no-proxy.js';

describe('NO_PROXY', () => {
  const list = parseNoProxy('internal.example, .corp.example,*.lan  10.0.0.7,api.local:8443,[::1]:9000,::2');

  it('matches a host and its subdomains, not a longer name that merely ends the same', () => {
    expect(bypassesProxy(list, 'internal.example', 443)).toBe(true);
    expect(bypassesProxy(list, 'sso.internal.example', 443)).toBe(true);
    expect(bypassesProxy(list, 'notinternal.example', 443)).toBe(false);
    expect(bypassesProxy(list, 'api.anthropic.com', 443)).toBe(false);
  });

  it('treats ".domain" and "*.domain" as the domain and its subdomains', () => {
    expect(bypassesProxy(list, 'corp.example', 443)).toBe(true);
    expect(bypassesProxy(list, 'a.b.corp.example', 80)).toBe(true);
    expect(bypassesProxy(list, 'printer.lan', 80)).toBe(true);
    expect(bypassesProxy(list, 'lan.example', 80)).toBe(false);
  });

  it('matches IP addresses exactly, IPv6 with or without brackets', () => {
    expect(bypassesProxy(list, '10.0.0.7', 80)).toBe(true);
    expect(bypassesProxy(list, '10.0.0.70', 80)).toBe(false);
    expect(bypassesProxy(list, '[::2]', 443)).toBe(true);
    expect(bypassesProxy(list, '::2', 443)).toBe(true);
  });

  it('honours a port when one is given', () => {
    expect(bypassesProxy(list, 'api.local', 8443)).toBe(true);
    expect(bypassesProxy(list, 'api.local', 443)).toBe(false);
    expect(bypassesProxy(list, '[::1]', 9000)).toBe(true);
    expect(bypassesProxy(list, '::1', 9001)).toBe(false);
  });

  it('gives loopback no special case: proxied unless listed', () => {
    expect(bypassesProxy(parseNoProxy(''), 'localhost', 80)).toBe(false);
    expect(bypassesProxy(parseNoProxy(''), '127.0.0.1', 80)).toBe(false);
    expect(bypassesProxy(parseNoProxy('localhost,127.0.0.1'), '127.0.0.1', 80)).toBe(true);
  });

  it('"*" bypasses every host; an empty list bypasses none', () => {
    expect(bypassesProxy(parseNoProxy('*'), 'api.anthropic.com', 443)).toBe(true);
    expect(bypassesProxy(parseNoProxy(' , '), 'api.anthropic.com', 443)).toBe(false);
  });

  it('ignores case and a trailing dot', () => {
    expect(bypassesProxy(parseNoProxy('Internal.Example.'), 'SSO.internal.example.', 443)).toBe(true);
  });
});
