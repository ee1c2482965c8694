// The row of a newly stored credential: one builder for every way a secret enters the vault (an
// admin's `credential add`, a user's own key through the self-service API), so each gets the same
// columns, the sealed secret and its non-secret hint, and nothing else.
import type { SealedSecret } from '../crypto/envelope.js';
import type { CredentialRow, Environment, OwnerType, Provider } from '../db/schema.js';

export interface CredentialRowSpec {
  id: string;
  name: string;
  provider: Provider;
  ownerType: OwnerType;
  ownerId: string | null;
  environment: Environment | null;
  preferred: boolean;
  hint: string;
  sealed: SealedSecret;
  now: number;
}

export function newCredentialRow(spec: CredentialRowSpec): CredentialRow {
  return {
    id: spec.id,
    name: spec.name,
    provider: spec.provider,
    owner_type: spec.ownerType,
    owner_id: spec.ownerId,
    environment: spec.environment,
    status: 'active',
    preferred: spec.preferred ? 1 : 0,
    hint: spec.hint,
    ciphertext: spec.sealed.ciphertext,
    wrapped_key: spec.sealed.wrappedKey,
    key_version: spec.sealed.keyVersion,
    created_at: spec.now,
    updated_at: spec.now,
    last_used_at: null,
    rotated_at: null,
    removed_at: null,
    retire_at: null,
    retired_from: null,
  };
}
