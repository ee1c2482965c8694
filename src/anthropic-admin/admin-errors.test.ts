import { describe, expect, it } from 'vitest';
import { adminError, looksLikeInferenceKey, noAdminCredential } from './admin-errors.js';

const reason = (status: number, message: string | null, beta = false) =>
  adminError(status, message, beta).details.reason ?? null;

describe('admin errors in plain words', () => {
  it('names each refusal', () => {
    expect(reason(401, 'invalid x-api-key')).toBe('invalid_key');
    expect(reason(403, 'Your API key does not have permission to use the specified resource.')).toBe(
      'no_access',
    );
    expect(reason(403, 'This API key is not authorized to use the Admin API')).toBe('wrong_key_type');
    expect(reason(404, 'Admin API keys are required for this endpoint')).toBe('wrong_key_type');
    expect(reason(400, 'The beta "spend-limits-2026" is not enabled for your organization', true)).toBe(
      'beta_not_enabled',
    );
  });

  it('does not call every 4xx a beta problem: only calls that named a beta, and only when the answer says so', () => {
    expect(reason(400, 'The beta "x" is not enabled', false)).toBeNull();
    expect(reason(403, 'permission denied', true)).toBe('no_access');
    expect(adminError(404, 'workspace not found', false).code).toBe('not_found');
  });

  it('maps statuses to codes the CLI turns into exit statuses', () => {
    expect(adminError(401, null, false).code).toBe('credential_rejected');
    expect(adminError(403, null, false).code).toBe('forbidden');
    expect(adminError(429, null, false).code).toBe('upstream_rate_limited');
    expect(adminError(529, 'Overloaded', false).code).toBe('upstream_error');
    expect(adminError(409, 'exists', false).code).toBe('invalid_input');
  });

  it('tells how to add an admin key when none is configured', () => {
    expect(noAdminCredential().message).toContain('tollgate credential add NAME --provider anthropic-admin');
  });

  it('recognises a regular API key stored as the admin key', () => {
    expect(looksLikeInferenceKey('sk-ant-api03-test-abc')).toBe(true);
    expect(looksLikeInferenceKey('sk-ant-admin01-test-abc')).toBe(false);
  });
});
