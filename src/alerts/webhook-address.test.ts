import { describe, expect, it } from 'vitest';
import { expandV6, refusedAddress, refusedHost, webhookUrlProblem } from './webhook-address.js';

describe('webhook addresses', () => {
  it('refuses link-local and metadata addresses in every spelling', () => {
    for (const ip of [
      '169.254.169.254',
      '169.254.0.1',
      '169.254.255.255',
      '100.100.100.200',
      '0.0.0.0',
      'fe80::1',
      'FE80::abcd%eth0',
      'febf:ffff::1',
      'fd00:ec2::254',
      '::ffff:169.254.169.254',
      '::ffff:a9fe:a9fe',
      '64:ff9b::169.254.169.254',
      '::',
      '[fe80::1]',
    ]) {
      expect(refusedAddress(ip), ip).not.toBeNull();
    }
  });

  it('allows loopback, private and public addresses (positive controls)', () => {
    for (const ip of [
      '127.0.0.1',
      '10.1.2.3',
      '192.168.1.1',
      '172.16.0.1',
      '169.255.0.1',
      '169.253.255.255',
      '8.8.8.8',
      '::1',
      'fd00::1',
      'fec0::1',
      '2001:db8::1',
      '::ffff:127.0.0.1',
    ]) {
      expect(refusedAddress(ip), ip).toBeNull();
    }
  });

  it('refuses metadata names, case and trailing dot aside; other names are left to resolution', () => {
    expect(refusedHost('metadata.google.internal')).toBe('a cloud metadata name');
    expect(refusedHost('Metadata.Google.Internal.')).toBe('a cloud metadata name');
    expect(refusedHost('hooks.slack.com')).toBeNull();
    expect(refusedHost('localhost')).toBeNull();
  });

  it('expands IPv6 text to its groups', () => {
    expect(expandV6('fe80::1')).toEqual([0xfe80, 0, 0, 0, 0, 0, 0, 1]);
    expect(expandV6('::ffff:1.2.3.4')).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
    expect(expandV6('1::2::3')).toBeNull();
  });

  it('webhookUrlProblem: http(s) only, and the allow switch', () => {
    expect(webhookUrlProblem('file:///etc/passwd', true)).toBe('expected an http(s) URL');
    expect(webhookUrlProblem('http://169.254.169.254/', false)).toMatch(/^points to a link-local/);
    expect(webhookUrlProblem('http://169.254.169.254/', true)).toBeNull();
    expect(webhookUrlProblem('http://127.0.0.1:1/', false)).toBeNull();
  });
});
