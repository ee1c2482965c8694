import { describe, expect, it } from 'vitest';
import { credentialHint } from './hint.js';

describe('credentialHint', () => {
  it("uses Anthropic's partial_key_hint format for Anthropic keys", () => {
    const key = `sk-ant-api03-R2D${'x'.repeat(80)}igAA`;
    expect(credentialHint('anthropic', key)).toBe('sk-ant-api03-R2D...igAA');
  });

  it('shows only the last four characters of other tokens', () => {
    expect(credentialHint('github', 'ghp_testtoken1234567890abcd')).toBe('...abcd');
  });

  it('shows at most the last four characters of short secrets', () => {
    expect(credentialHint('generic', 'short-secret')).toBe('...');
    expect(credentialHint('anthropic', 'sk-ant-api03-short')).toBe('...hort');
  });
});
