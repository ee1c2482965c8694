import { describe, expect, it } from 'vitest';
import type { CredentialView } from '../vault/credential.service.js';
import { chooseAdminCredential, credentialsByHint } from './admin-key.js';

function view(name: string, changes: Partial<CredentialView> = {}): CredentialView {
  return {
    id: `cred_${name}`,
    name,
    provider: 'anthropic-admin',
    owner: 'org',
    ownerType: 'org',
    ownerId: null,
    environment: null,
    status: 'active',
    preferred: false,
    hint: 'sk-ant-admin01-x...abcd',
    createdAt: 0,
    updatedAt: 0,
    lastUsedAt: null,
    rotatedAt: null,
    retireAt: null,
    ...changes,
  };
}

describe('chooseAdminCredential', () => {
  it('takes the preferred active org admin key, else the first', () => {
    expect(chooseAdminCredential([view('a'), view('b', { preferred: true })])?.name).toBe('b');
    expect(chooseAdminCredential([view('a'), view('b')])?.name).toBe('a');
  });

  it('skips disabled, team-owned and non-admin credentials', () => {
    expect(
      chooseAdminCredential([
        view('off', { status: 'inactive', preferred: true }),
        view('team', { ownerType: 'team', owner: 'team:x' }),
        view('api', { provider: 'anthropic' }),
      ]),
    ).toBeNull();
    expect(chooseAdminCredential([view('off', { status: 'inactive' }), view('on')])?.name).toBe('on');
  });
});

describe('credentialsByHint', () => {
  it('indexes Anthropic API key credentials by hint, several names per hint', () => {
    const hint = 'sk-ant-api03-R2D...igAA';
    const index = credentialsByHint([
      view('main', { provider: 'anthropic', hint }),
      view('copy', { provider: 'anthropic', hint }),
      view('admin', { hint }),
    ]);
    expect(index.get(hint)).toEqual(['main', 'copy']);
  });
});
