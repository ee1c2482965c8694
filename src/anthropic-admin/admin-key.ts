// Which stored credential is the organisation's admin key (pure choice over the vault's listing).
import type { CredentialView } from '../vault/credential.service.js';

/**
 * The org-owned, active `anthropic-admin` credential to use: the preferred one, else the first by
 * name; null when there is none.
 */
export function chooseAdminCredential(views: readonly CredentialView[]): CredentialView | null {
  const usable = views.filter(
    (v) => v.provider === 'anthropic-admin' && v.ownerType === 'org' && v.status === 'active',
  );
  return usable.find((v) => v.preferred) ?? usable[0] ?? null;
}

/** Tollgate credential names by their stored hint (Anthropic's `partial_key_hint` format). */
export function credentialsByHint(views: readonly CredentialView[]): Map<string, string[]> {
  const byHint = new Map<string, string[]>();
  for (const view of views) {
    if (view.provider !== 'anthropic') continue;
    const names = byHint.get(view.hint) ?? [];
    names.push(view.name);
    byHint.set(view.hint, names);
  }
  return byHint;
}
