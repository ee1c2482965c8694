import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY } from './key.service.js';
import { checkList, MODEL_ID, parseTools, TOOL_NAME } from './key-policy.js';
import { type ProfilePolicy, policyWithProfile } from './profile.service.js';

const analysis: ProfilePolicy = {
  ...DEFAULT_POLICY,
  tools: ['Read', 'Grep', 'Glob'],
  rpm: 60,
  monthlyBudgetMicro: 50_000_000,
  expiresInMs: 90 * 86_400_000,
};

describe('policyWithProfile', () => {
  it('starts from the profile and lets given values override it, null included', () => {
    const { policy, expiresInMs } = policyWithProfile(analysis, { tools: ['Read'], rpm: null });
    expect(policy).toMatchObject({ tools: ['Read'], rpm: null, monthlyBudgetMicro: 50_000_000 });
    expect(expiresInMs).toBe(90 * 86_400_000);
    expect(policyWithProfile(analysis, { expiresInMs: null }).expiresInMs).toBeNull();
  });

  it('ignores fields present but undefined (they must not erase the profile)', () => {
    const { policy } = policyWithProfile(analysis, { tools: undefined, expiresInMs: undefined });
    expect(policy.tools).toEqual(['Read', 'Grep', 'Glob']);
  });

  it('without a profile, the defaults of a plain key apply', () => {
    const { policy, expiresInMs } = policyWithProfile(null, { maxTokens: 100 });
    expect(policy).toEqual({ ...DEFAULT_POLICY, maxTokens: 100 });
    expect(expiresInMs).toBeNull();
    expect(policy).not.toHaveProperty('expiresInMs');
  });
});

describe('checkList (the rule of --models/--tools and of the API lists)', () => {
  it('trims and deduplicates, and says what is wrong without a subject', () => {
    expect(checkList([' Read', 'Read', 'Grep '], TOOL_NAME)).toEqual(['Read', 'Grep']);
    expect(checkList([], MODEL_ID)).toEqual({ problem: 'must name at least one entry' });
    expect(checkList(['claude-haiku-4-5', 'Bad Model'], MODEL_ID)).toEqual({
      problem: '"Bad Model" is not a valid name',
    });
  });

  it('keeps the CLI messages naming the option', () => {
    expect(() => parseTools(',')).toThrow('--tools must name at least one entry');
    expect(() => parseTools('Read,bad tool')).toThrow('--tools: "bad tool" is not a valid name');
  });
});
