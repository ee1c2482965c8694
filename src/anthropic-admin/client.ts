// Typed Admin API calls: organisation, workspaces and API keys (lists walk every page).
import { AppError } from '../lib/errors.js';
import { allItems, cursorStep, DEFAULT_MAX_PAGES } from './paging.js';
import {
  type ApiKey,
  type ApiKeyStatus,
  apiKeySchema,
  cursorPageSchema,
  type Organization,
  organizationSchema,
  type Workspace,
  workspaceSchema,
} from './schemas.js';
import type { AdminTransport } from './transport.js';

export interface ListApiKeysFilter {
  readonly status?: ApiKeyStatus;
  readonly workspaceId?: string;
}

export interface AdminClient {
  me(): Promise<Organization>;
  listWorkspaces(options?: { includeArchived?: boolean }): Promise<Workspace[]>;
  createWorkspace(name: string): Promise<Workspace>;
  archiveWorkspace(id: string): Promise<Workspace>;
  listApiKeys(filter?: ListApiKeysFilter): Promise<ApiKey[]>;
  updateApiKey(id: string, change: { status?: ApiKeyStatus; name?: string }): Promise<ApiKey>;
}

export interface AdminClientOptions {
  /** Items asked per page (1–1000, default 100). */
  readonly pageSize?: number;
  readonly maxPages?: number;
}

const workspacePage = cursorPageSchema(workspaceSchema);
const apiKeyPage = cursorPageSchema(apiKeySchema);

/** Workspace names are 1–40 characters (checked before calling, so the answer is ours and plain). */
export function checkWorkspaceName(name: string): string {
  if (name.length < 1 || name.length > 40) {
    throw new AppError(
      'invalid_input',
      `a workspace name has 1 to 40 characters (this one has ${name.length})`,
    );
  }
  return name;
}

/** Ids travel in the path: refuse anything that is not a plain id. */
export function checkId(id: string, prefix: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) {
    throw new AppError(
      'invalid_input',
      `"${id.slice(0, 40)}" is not an Anthropic id (they look like ${prefix}_…)`,
    );
  }
  return id;
}

export function createAdminClient(call: AdminTransport, options: AdminClientOptions = {}): AdminClient {
  const limit = String(options.pageSize ?? 100);
  const maxPages = options.maxPages ?? DEFAULT_MAX_PAGES;

  return {
    me: () => call({ method: 'GET', path: '/v1/organizations/me', schema: organizationSchema }),

    listWorkspaces: (opts = {}) =>
      allItems(async (after: string | null) => {
        const page = await call({
          method: 'GET',
          path: '/v1/organizations/workspaces',
          query: {
            limit,
            after_id: after ?? undefined,
            include_archived: opts.includeArchived ? 'true' : undefined,
          },
          schema: workspacePage,
        });
        return cursorStep(page);
      }, maxPages),

    createWorkspace: async (name) =>
      call({
        method: 'POST',
        path: '/v1/organizations/workspaces',
        body: { name: checkWorkspaceName(name) },
        schema: workspaceSchema,
      }),

    archiveWorkspace: async (id) =>
      call({
        method: 'POST',
        path: `/v1/organizations/workspaces/${checkId(id, 'wrkspc')}/archive`,
        schema: workspaceSchema,
      }),

    listApiKeys: (filter = {}) =>
      allItems(async (after: string | null) => {
        const page = await call({
          method: 'GET',
          path: '/v1/organizations/api_keys',
          query: {
            limit,
            after_id: after ?? undefined,
            status: filter.status,
            workspace_id: filter.workspaceId,
          },
          schema: apiKeyPage,
        });
        return cursorStep(page);
      }, maxPages),

    updateApiKey: async (id, change) =>
      call({
        method: 'POST',
        path: `/v1/organizations/api_keys/${checkId(id, 'apikey')}`,
        body: change,
        schema: apiKeySchema,
      }),
  };
}
