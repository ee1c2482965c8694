// Anthropic Admin API operations for the CLI: each call opens the org's admin key from the vault, and
// each change (workspace create/archive, key disable) is recorded in the audit log, without secrets.
import { type Actor, change, type ServiceContext } from '../install/context.js';
import type { CredentialService } from '../vault/credential.service.js';
import type { UpstreamTarget } from '../vault/validate-credential.js';
import { looksLikeInferenceKey, noAdminCredential, wrongKeyType } from './admin-errors.js';
import { chooseAdminCredential, credentialsByHint } from './admin-key.js';
import { type AdminClient, createAdminClient, type ListApiKeysFilter } from './client.js';
import type { RetryPolicy } from './retry.js';
import type { ApiKey, Workspace } from './schemas.js';
import { type AdminTransport, createTransport } from './transport.js';

export interface AdminServiceDeps {
  readonly credentials: Pick<CredentialService, 'list' | 'reveal'>;
  readonly upstream: UpstreamTarget;
  readonly retry?: Partial<RetryPolicy>;
}

/** An Anthropic API key with the Tollgate credential(s) whose stored hint matches it. */
export interface ApiKeyWithMatch extends ApiKey {
  readonly tollgate_credential: string | null;
}

/** A transport carrying the org's admin key, opened from the vault for one operation. */
export async function openAdminTransport(deps: AdminServiceDeps): Promise<AdminTransport> {
  const chosen = chooseAdminCredential(await deps.credentials.list({ provider: 'anthropic-admin' }));
  if (chosen === null) throw noAdminCredential();
  const adminKey = await deps.credentials.reveal(chosen.id);
  if (looksLikeInferenceKey(adminKey)) throw wrongKeyType();
  return createTransport({
    baseUrl: deps.upstream.baseUrl,
    adminKey,
    timeoutMs: deps.upstream.timeoutMs,
    ...(deps.upstream.dispatcher ? { dispatcher: deps.upstream.dispatcher } : {}),
    ...(deps.retry ? { retry: deps.retry } : {}),
  });
}

export function createAnthropicAdminService(ctx: ServiceContext, deps: AdminServiceDeps) {
  async function client(): Promise<AdminClient> {
    return createAdminClient(await openAdminTransport(deps));
  }

  async function withMatches(keys: readonly ApiKey[]): Promise<ApiKeyWithMatch[]> {
    const byHint = credentialsByHint(await deps.credentials.list({ provider: 'anthropic' }));
    return keys.map((key) => ({
      ...key,
      tollgate_credential:
        key.partial_key_hint === null ? null : (byHint.get(key.partial_key_hint)?.join(', ') ?? null),
    }));
  }

  return {
    async listWorkspaces(options: { includeArchived?: boolean } = {}): Promise<Workspace[]> {
      return (await client()).listWorkspaces(options);
    },

    async createWorkspace(by: Actor, name: string): Promise<Workspace> {
      const workspace = await (await client()).createWorkspace(name);
      await change(ctx, by, (u) =>
        u.audit('anthropic.workspace.create', 'anthropic_workspace', workspace.id, { name: workspace.name }),
      );
      return workspace;
    },

    async archiveWorkspace(by: Actor, id: string): Promise<Workspace> {
      const workspace = await (await client()).archiveWorkspace(id);
      await change(ctx, by, (u) =>
        u.audit('anthropic.workspace.archive', 'anthropic_workspace', workspace.id, { name: workspace.name }),
      );
      return workspace;
    },

    async listApiKeys(filter: ListApiKeysFilter = {}): Promise<ApiKeyWithMatch[]> {
      return withMatches(await (await client()).listApiKeys(filter));
    },

    /** Sets the key inactive; the answer names the Tollgate credential it is stored as, if any. */
    async disableApiKey(by: Actor, id: string): Promise<ApiKeyWithMatch> {
      const key = await (await client()).updateApiKey(id, { status: 'inactive' });
      await change(ctx, by, (u) =>
        u.audit('anthropic.api_key.disable', 'anthropic_api_key', key.id, {
          name: key.name,
          status: key.status,
          workspace_id: key.workspace_id,
        }),
      );
      const [matched] = await withMatches([key]);
      return matched ?? { ...key, tollgate_credential: null };
    },
  };
}

export type AnthropicAdminService = ReturnType<typeof createAnthropicAdminService>;
