// The fake's usage and cost reports (`/v1/organizations/usage_report/messages`, `/cost_report`), computed
// from its own ground truth: every Messages request it served, per API key, model and UTC day or hour.
// Keys are named by the `apikey_…` id the Admin API lists for them (matched through the hint); a key it
// has no id for gets one assigned. Amounts are cents as decimal strings, from the fake's own prices.

import { adversarialCostMicro } from './adversarial.js';
import type { Exchange } from './exchange.js';
import type { FakeApiKey, ServedRecord, ServedUsage } from './types.js';
import { sendError, sendJson } from './wire.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const WIDTHS = { '1d': { ms: DAY, byDefault: 7, max: 31 }, '1h': { ms: HOUR, byDefault: 24, max: 168 } };
const USAGE_GROUPS = ['api_key_id', 'workspace_id', 'model'] as const;
const COST_GROUPS = ['workspace_id', 'description'] as const;

export interface ReportStore {
  /** Caps every report page at `buckets` buckets whatever `limit` asks (to exercise paging). */
  setMaxBuckets(buckets: number): void;
  /** Requests newer than `now - ms` are not reported yet (the real reports lag). */
  setLagMs(ms: number): void;
  handle(ex: Exchange, path: string): boolean;
  reset(): void;
}

interface Tokens {
  uncached: number;
  write5m: number;
  write1h: number;
  read: number;
  output: number;
  searches: number;
}

interface Group {
  apiKeyId: string;
  workspaceId: string | null;
  model: string;
  tokens: Tokens;
}

const partialKeyHint = (secret: string) => `${secret.slice(0, 16)}...${secret.slice(-4)}`;

function add(t: Tokens, u: ServedUsage): void {
  t.uncached += u.input_tokens;
  t.write5m += u.cache_creation_5m;
  t.write1h += u.cache_creation_1h;
  t.read += u.cache_read;
  t.output += u.output_tokens;
  t.searches += u.web_search_requests;
}

/** micro-USD → cents as a decimal string (`1234500` → `"123.4500"`). */
function centsString(micro: number): string {
  const whole = Math.floor(micro / 10_000);
  return `${whole}.${String(micro % 10_000).padStart(4, '0')}`;
}

export function createReportStore(
  served: readonly ServedRecord[],
  apiKeys: () => FakeApiKey[],
  now: () => number,
): ReportStore {
  let maxBuckets = Number.POSITIVE_INFINITY;
  let lagMs = 0;
  const assigned = new Map<string, string>();

  function keyOf(secret: string): { id: string; workspaceId: string | null } {
    const hint = partialKeyHint(secret);
    const known = apiKeys().find((k) => k.partial_key_hint === hint);
    if (known) return { id: known.id, workspaceId: known.workspace_id };
    let id = assigned.get(secret);
    if (id === undefined) {
      id = `apikey_unlisted${String(assigned.size + 1).padStart(4, '0')}`;
      assigned.set(secret, id);
    }
    return { id, workspaceId: null };
  }

  /** Usage per key × model of the billed Messages requests in [from, to). */
  function groupsIn(from: number, to: number): Group[] {
    const cutoff = now() - lagMs;
    const out = new Map<string, Group>();
    for (const r of served) {
      if (r.path !== '/v1/messages' || r.usage === undefined || r.apiKey === null || r.model === undefined)
        continue;
      if (r.at < from || r.at >= to || r.at > cutoff) continue;
      const key = keyOf(r.apiKey);
      const id = `${key.id}\u0000${r.model}`;
      let group = out.get(id);
      if (!group) {
        const tokens = { uncached: 0, write5m: 0, write1h: 0, read: 0, output: 0, searches: 0 };
        group = { apiKeyId: key.id, workspaceId: key.workspaceId, model: r.model, tokens };
        out.set(id, group);
      }
      add(group.tokens, r.usage);
    }
    return [...out.values()];
  }

  function fail(ex: Exchange, message: string): true {
    ex.settle(400, 'error');
    sendError(ex.res, 400, message, ex.requestId);
    return true;
  }

  /** The buckets of one page, or an error message; `page` is an opaque token (the first bucket's start). */
  function buckets(
    params: URLSearchParams,
    width: { ms: number; byDefault: number; max: number },
  ): { starts: number[]; end: number; next: string | null } | string {
    const startingAt = Date.parse(params.get('starting_at') ?? '');
    if (Number.isNaN(startingAt)) return 'starting_at: Field required (RFC 3339)';
    const endingRaw = params.get('ending_at');
    const end = endingRaw === null ? now() : Date.parse(endingRaw);
    if (Number.isNaN(end) || end <= startingAt) return 'ending_at: must be after starting_at';
    const limitRaw = params.get('limit');
    const limit = limitRaw === null ? width.byDefault : /^\d+$/.test(limitRaw) ? Number(limitRaw) : 0;
    if (limit < 1 || limit > width.max) return `limit: Input should be between 1 and ${width.max}`;
    const first = Math.floor(startingAt / width.ms) * width.ms;
    const page = params.get('page');
    let from = first;
    if (page !== null) {
      const decoded = Number(Buffer.from(page, 'base64url').toString('utf8').replace(/^b:/, ''));
      if (!Number.isInteger(decoded) || decoded < first || (decoded - first) % width.ms !== 0)
        return 'page: invalid page token';
      from = decoded;
    }
    const starts: number[] = [];
    let at = from;
    while (at < end && starts.length < Math.min(limit, maxBuckets)) {
      starts.push(at);
      at += width.ms;
    }
    const next = at < end ? Buffer.from(`b:${at}`).toString('base64url') : null;
    return { starts, end, next };
  }

  function usageReport(ex: Exchange, params: URLSearchParams): true {
    const widthName = params.get('bucket_width') ?? '1d';
    if (widthName !== '1d' && widthName !== '1h') return fail(ex, 'bucket_width: 1d or 1h (the fake)');
    const groupBy = params.getAll('group_by[]');
    for (const g of groupBy) {
      if (!(USAGE_GROUPS as readonly string[]).includes(g)) return fail(ex, `group_by: unknown value ${g}`);
    }
    const width = WIDTHS[widthName];
    const page = buckets(params, width);
    if (typeof page === 'string') return fail(ex, page);
    const data = page.starts.map((start) => {
      const stop = Math.min(start + width.ms, page.end);
      const merged = new Map<string, Group>();
      for (const g of groupsIn(start, stop)) {
        const shown = {
          apiKeyId: groupBy.includes('api_key_id') ? g.apiKeyId : null,
          workspaceId: groupBy.includes('workspace_id') ? g.workspaceId : null,
          model: groupBy.includes('model') ? g.model : null,
        };
        const id = `${shown.apiKeyId}\u0000${shown.workspaceId}\u0000${shown.model}`;
        const into = merged.get(id);
        if (into) {
          for (const k of Object.keys(into.tokens) as Array<keyof Tokens>) into.tokens[k] += g.tokens[k];
        } else {
          merged.set(id, { ...g, tokens: { ...g.tokens } });
        }
      }
      return {
        starting_at: new Date(start).toISOString(),
        ending_at: new Date(start + width.ms).toISOString(),
        results: [...merged.values()].map((g) => ({
          uncached_input_tokens: g.tokens.uncached,
          cache_creation: {
            ephemeral_1h_input_tokens: g.tokens.write1h,
            ephemeral_5m_input_tokens: g.tokens.write5m,
          },
          cache_read_input_tokens: g.tokens.read,
          output_tokens: g.tokens.output,
          server_tool_use: { web_search_requests: g.tokens.searches },
          api_key_id: groupBy.includes('api_key_id') ? g.apiKeyId : null,
          workspace_id: groupBy.includes('workspace_id') ? g.workspaceId : null,
          model: groupBy.includes('model') ? g.model : null,
          service_tier: null,
          context_window: null,
        })),
      };
    });
    ex.settle(200, 'complete');
    sendJson(
      ex.res,
      200,
      ex.requestId,
      JSON.stringify({ data, has_more: page.next !== null, next_page: page.next }),
    );
    return true;
  }

  function costReport(ex: Exchange, params: URLSearchParams): true {
    const width = WIDTHS['1d'];
    const groupBy = params.getAll('group_by[]');
    for (const g of groupBy) {
      if (!(COST_GROUPS as readonly string[]).includes(g)) return fail(ex, `group_by: unknown value ${g}`);
    }
    const page = buckets(params, width);
    if (typeof page === 'string') return fail(ex, page);
    const byDescription = groupBy.includes('description');
    const byWorkspace = groupBy.includes('workspace_id');
    const data = page.starts.map((start) => {
      const lines = new Map<
        string,
        { micro: number; model: string | null; type: string | null; ws: string | null }
      >();
      const push = (ws: string | null, model: string, type: string, micro: number) => {
        if (micro === 0) return;
        const shownWs = byWorkspace ? ws : null;
        const id = byDescription ? `${shownWs}\u0000${model}\u0000${type}` : `${shownWs}`;
        const line = lines.get(id) ?? {
          micro: 0,
          model: byDescription ? model : null,
          type: byDescription ? type : null,
          ws: shownWs,
        };
        line.micro += micro;
        lines.set(id, line);
      };
      for (const g of groupsIn(start, Math.min(start + width.ms, page.end))) {
        const t = g.tokens;
        const zero = {
          input_tokens: 0,
          output_tokens: 0,
          cache_creation_5m: 0,
          cache_creation_1h: 0,
          cache_read: 0,
          web_search_requests: 0,
        };
        const price = (part: Partial<typeof zero>) => adversarialCostMicro(g.model, { ...zero, ...part }, []);
        push(g.workspaceId, g.model, 'uncached_input_tokens', price({ input_tokens: t.uncached }));
        push(g.workspaceId, g.model, 'output_tokens', price({ output_tokens: t.output }));
        push(g.workspaceId, g.model, 'cache_read_input_tokens', price({ cache_read: t.read }));
        push(
          g.workspaceId,
          g.model,
          'cache_creation.ephemeral_5m_input_tokens',
          price({ cache_creation_5m: t.write5m }),
        );
        push(
          g.workspaceId,
          g.model,
          'cache_creation.ephemeral_1h_input_tokens',
          price({ cache_creation_1h: t.write1h }),
        );
        push(g.workspaceId, g.model, 'web_search', price({ web_search_requests: t.searches }));
      }
      return {
        starting_at: new Date(start).toISOString(),
        ending_at: new Date(start + width.ms).toISOString(),
        results: [...lines.values()].map((l) => ({
          amount: centsString(l.micro),
          currency: 'USD',
          cost_type: l.type === 'web_search' ? 'web_search' : l.type === null ? null : 'tokens',
          token_type: l.type === null || l.type === 'web_search' ? null : l.type,
          description: l.model === null ? null : `${l.model} usage - ${l.type}`,
          model: l.model,
          workspace_id: l.ws,
          service_tier: null,
          context_window: null,
        })),
      };
    });
    ex.settle(200, 'complete');
    sendJson(
      ex.res,
      200,
      ex.requestId,
      JSON.stringify({ data, has_more: page.next !== null, next_page: page.next }),
    );
    return true;
  }

  return {
    setMaxBuckets(n) {
      maxBuckets = Math.max(1, Math.floor(n));
    },
    setLagMs(ms) {
      lagMs = Math.max(0, ms);
    },
    handle(ex, path) {
      if (ex.req.method !== 'GET') return false;
      const url = ex.req.url ?? '';
      const params = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
      if (path === '/v1/organizations/usage_report/messages') return usageReport(ex, params);
      if (path === '/v1/organizations/cost_report') return costReport(ex, params);
      return false;
    },
    reset() {
      maxBuckets = Number.POSITIVE_INFINITY;
      lagMs = 0;
      assigned.clear();
    },
  };
}
