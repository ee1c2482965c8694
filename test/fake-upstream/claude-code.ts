// The fake's Claude Code analytics report: `GET /v1/organizations/usage_report/claude_code?starting_at=
// YYYY-MM-DD` answers the records seeded for that one UTC day, one per actor, paged by token
// (`limit` 1–1000, default 20; `page` → `data, has_more, next_page`).
import type { Exchange } from './exchange.js';
import type { FakeClaudeCodeRecord } from './types.js';
import { sendError, sendJson } from './wire.js';

export const CLAUDE_CODE_PATH = '/v1/organizations/usage_report/claude_code';

export interface ClaudeCodeStore {
  add(record: FakeClaudeCodeRecord): void;
  /** Answer 403 permission_error, as for an organisation without Claude Code analytics. */
  setNoAccess(on: boolean): void;
  handle(ex: Exchange, query: Record<string, string>): void;
  reset(): void;
}

export function createClaudeCodeStore(): ClaudeCodeStore {
  let records: FakeClaudeCodeRecord[] = [];
  let noAccess = false;

  function fail(ex: Exchange, message: string) {
    ex.settle(400, 'error');
    sendError(ex.res, 400, message, ex.requestId);
  }

  return {
    add(record) {
      records.push(structuredClone(record));
    },
    setNoAccess(on) {
      noAccess = on;
    },
    handle(ex, query) {
      if (noAccess) {
        ex.settle(403, 'error');
        return sendError(
          ex.res,
          403,
          'Your organization does not have access to the Claude Code analytics report.',
          ex.requestId,
        );
      }
      const day = query.starting_at;
      if (
        day === undefined ||
        !/^\d{4}-\d{2}-\d{2}$/.test(day) ||
        Number.isNaN(Date.parse(`${day}T00:00:00Z`))
      )
        return fail(ex, 'starting_at: Input should be a date in the format YYYY-MM-DD');
      const raw = query.limit;
      const limit = raw === undefined ? 20 : /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
      if (!(limit >= 1 && limit <= 1000)) return fail(ex, 'limit: Input should be between 1 and 1000');
      const page = query.page;
      const start = page === undefined ? 0 : /^page_\d+$/.test(page) ? Number(page.slice(5)) : -1;
      if (start < 0) return fail(ex, 'page: invalid page token');
      const ofDay = records.filter((r) => r.date.startsWith(day));
      const data = ofDay.slice(start, start + limit);
      const hasMore = start + limit < ofDay.length;
      ex.settle(200, 'complete');
      sendJson(
        ex.res,
        200,
        ex.requestId,
        JSON.stringify({ data, has_more: hasMore, next_page: hasMore ? `page_${start + limit}` : null }),
      );
    },
    reset() {
      records = [];
      noAccess = false;
    },
  };
}
