// The fake's Admin API state and routes: workspaces and API keys under /v1/organizations/…, with
// Anthropic's cursor paging (limit / after_id / before_id → data, first_id, last_id, has_more).

import type { Exchange } from './exchange.js';
import type { FakeApiKey, FakeApiKeyInput, FakeWorkspace } from './types.js';
import { sendError, sendJson } from './wire.js';

const API_KEY_STATUSES = ['active', 'inactive', 'archived'] as const;
type ApiKeyStatus = (typeof API_KEY_STATUSES)[number];

/** Anthropic's `partial_key_hint`: the first 16 and last 4 characters with `...` between. */
export function partialKeyHint(secret: string): string {
  return `${secret.slice(0, 16)}...${secret.slice(-4)}`;
}

export interface AdminStore {
  addApiKey(input: FakeApiKeyInput): FakeApiKey;
  /** True when the secret belongs to a registered key that is not active (Messages must refuse it). */
  isDisabled(secret: string): boolean;
  setMaxPageSize(size: number): void;
  setNoAccess(on: boolean): void;
  readonly noAccess: boolean;
  workspaces(): FakeWorkspace[];
  apiKeys(): FakeApiKey[];
  handle(ex: Exchange, method: string, path: string, query: Record<string, string>, body: unknown): void;
  reset(): void;
}

interface Page<T> {
  data: T[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

type Paged<T> = { ok: true; page: Page<T> } | { ok: false; message: string };

/** Cursor paging over `items`; the page is the smaller of `limit` (1–1000, default 20) and the fake's cap. */
export function pageOf<T extends { id: string }>(
  items: readonly T[],
  query: Record<string, string>,
  maxPageSize: number,
): Paged<T> {
  const raw = query.limit;
  const limit = raw === undefined ? 20 : /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(limit >= 1 && limit <= 1000))
    return { ok: false, message: 'limit: Input should be between 1 and 1000' };
  const size = Math.min(limit, maxPageSize);
  let start = 0;
  let end: number;
  let hasMore: boolean;
  if (query.before_id !== undefined) {
    const index = items.findIndex((i) => i.id === query.before_id);
    if (index < 0) return { ok: false, message: `before_id: unknown id ${query.before_id}` };
    end = index;
    start = Math.max(0, end - size);
    hasMore = start > 0;
  } else {
    if (query.after_id !== undefined) {
      const index = items.findIndex((i) => i.id === query.after_id);
      if (index < 0) return { ok: false, message: `after_id: unknown id ${query.after_id}` };
      start = index + 1;
    }
    end = Math.min(items.length, start + size);
    hasMore = end < items.length;
  }
  const data = items.slice(start, end);
  return {
    ok: true,
    page: { data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStatus(value: unknown): value is ApiKeyStatus {
  return typeof value === 'string' && (API_KEY_STATUSES as readonly string[]).includes(value);
}

export function createAdminStore(now: () => number): AdminStore {
  let workspaces: FakeWorkspace[] = [];
  let keys: Array<{ key: FakeApiKey; secret: string }> = [];
  let maxPageSize = 1000;
  let noAccess = false;
  let counter = 0;

  const nextId = (prefix: string) => `${prefix}_fake${String(++counter).padStart(6, '0')}`;
  const iso = () => new Date(now()).toISOString();

  function ok(ex: Exchange, value: unknown): void {
    ex.settle(200, 'complete');
    sendJson(ex.res, 200, ex.requestId, JSON.stringify(value));
  }
  function fail(ex: Exchange, status: number, message: string): void {
    ex.settle(status, 'error');
    sendError(ex.res, status, message, ex.requestId);
  }
  function sendPage<T extends { id: string }>(
    ex: Exchange,
    items: readonly T[],
    query: Record<string, string>,
  ) {
    const result = pageOf(items, query, maxPageSize);
    if (!result.ok) return fail(ex, 400, result.message);
    ok(ex, result.page);
  }

  function workspaceRoutes(
    ex: Exchange,
    method: string,
    rest: string[],
    query: Record<string, string>,
    body: unknown,
  ) {
    const [id, action, extra] = rest;
    if (id === undefined) {
      if (method === 'GET') {
        const all = query.include_archived === 'true' ? workspaces : workspaces.filter((w) => !w.archived_at);
        return sendPage(ex, all, query);
      }
      const name = isObject(body) ? body.name : undefined;
      if (typeof name !== 'string' || name.length < 1 || name.length > 40) {
        return fail(ex, 400, 'name: String should have between 1 and 40 characters');
      }
      if (workspaces.some((w) => w.name === name && !w.archived_at)) {
        return fail(ex, 409, `A workspace named ${name} already exists`);
      }
      const workspace: FakeWorkspace = {
        id: nextId('wrkspc'),
        type: 'workspace',
        name,
        created_at: iso(),
        archived_at: null,
        display_color: '#6C5BB9',
      };
      workspaces.push(workspace);
      return ok(ex, workspace);
    }
    const workspace = workspaces.find((w) => w.id === id);
    if (!workspace || extra !== undefined) return fail(ex, 404, `workspace ${id} not found`);
    if (action === undefined && method === 'GET') return ok(ex, workspace);
    if (action === 'archive' && method === 'POST') {
      if (!workspace.archived_at) workspace.archived_at = iso();
      return ok(ex, workspace);
    }
    return fail(ex, 404, `${method} ${ex.record.path} not found`);
  }

  function apiKeyRoutes(
    ex: Exchange,
    method: string,
    rest: string[],
    query: Record<string, string>,
    body: unknown,
  ) {
    const [id, extra] = rest;
    if (id === undefined) {
      if (method !== 'GET') return fail(ex, 404, `${method} ${ex.record.path} not found`);
      if (query.status !== undefined && !isStatus(query.status)) {
        return fail(ex, 400, 'status: Input should be active, inactive or archived');
      }
      const listed = keys
        .map((k) => k.key)
        .filter((k) => query.status === undefined || k.status === query.status)
        .filter((k) => query.workspace_id === undefined || k.workspace_id === query.workspace_id);
      return sendPage(ex, listed, query);
    }
    const entry = keys.find((k) => k.key.id === id);
    if (!entry || extra !== undefined) return fail(ex, 404, `api_key ${id} not found`);
    if (method === 'GET') return ok(ex, entry.key);
    if (!isObject(body)) return fail(ex, 400, 'body: Input should be an object');
    if (body.status !== undefined && !isStatus(body.status)) {
      return fail(ex, 400, 'status: Input should be active, inactive or archived');
    }
    if (entry.key.status === 'archived') return fail(ex, 400, 'An archived API key cannot be changed');
    if (typeof body.name === 'string') entry.key.name = body.name;
    if (isStatus(body.status)) entry.key.status = body.status;
    return ok(ex, entry.key);
  }

  return {
    addApiKey(input) {
      const key: FakeApiKey = {
        id: input.id ?? nextId('apikey'),
        type: 'api_key',
        name: input.name ?? 'fake key',
        workspace_id: input.workspaceId ?? null,
        created_at: iso(),
        created_by: { id: 'user_fake0001', type: 'user' },
        expires_at: null,
        partial_key_hint: partialKeyHint(input.secret),
        status: input.status ?? 'active',
      };
      keys.push({ key, secret: input.secret });
      return key;
    },
    isDisabled: (secret) => keys.some((k) => k.secret === secret && k.key.status !== 'active'),
    setMaxPageSize(size) {
      maxPageSize = Math.max(1, Math.floor(size));
    },
    setNoAccess(on) {
      noAccess = on;
    },
    get noAccess() {
      return noAccess;
    },
    workspaces: () => workspaces.map((w) => ({ ...w })),
    apiKeys: () => keys.map((k) => ({ ...k.key })),
    handle(ex, method, path, query, body) {
      const [collection, ...rest] = path.slice('/v1/organizations/'.length).split('/');
      let segments: string[];
      try {
        segments = rest.map((s) => decodeURIComponent(s));
      } catch {
        return fail(ex, 404, `${method} ${path} not found`);
      }
      if (collection === 'workspaces') return workspaceRoutes(ex, method, segments, query, body);
      if (collection === 'api_keys') return apiKeyRoutes(ex, method, segments, query, body);
      return fail(ex, 404, `${method} ${path} not found`);
    },
    reset() {
      workspaces = [];
      keys = [];
      maxPageSize = 1000;
      noAccess = false;
    },
  };
}
