// The fake's model catalogue (newest first, like the real list) and the `/v1/models` pagination rules.

export interface FakeModel {
  id: string;
  type: 'model';
  display_name: string;
  created_at: string;
}

function model(id: string, display_name: string, created_at: string): FakeModel {
  return { id, type: 'model', display_name, created_at };
}

// Release dates of unreleased-at-writing models are placeholders; only the order matters.
export const FAKE_MODELS: readonly FakeModel[] = [
  model('claude-opus-4-8', 'Claude Opus 4.8', '2026-09-01T00:00:00Z'),
  model('claude-sonnet-5', 'Claude Sonnet 5', '2026-07-01T00:00:00Z'),
  model('claude-opus-4-7', 'Claude Opus 4.7', '2026-05-01T00:00:00Z'),
  model('claude-opus-4-6', 'Claude Opus 4.6', '2026-02-05T00:00:00Z'),
  model('claude-sonnet-4-6', 'Claude Sonnet 4.6', '2026-02-17T00:00:00Z'),
  model('claude-opus-4-5-20251101', 'Claude Opus 4.5', '2025-11-24T00:00:00Z'),
  model('claude-haiku-4-5-20251001', 'Claude Haiku 4.5', '2025-10-15T00:00:00Z'),
  model('claude-sonnet-4-5-20250929', 'Claude Sonnet 4.5', '2025-09-29T00:00:00Z'),
  model('claude-opus-4-1-20250805', 'Claude Opus 4.1', '2025-08-05T00:00:00Z'),
  model('claude-opus-4-20250514', 'Claude Opus 4', '2025-05-22T00:00:00Z'),
  model('claude-sonnet-4-20250514', 'Claude Sonnet 4', '2025-05-22T00:00:00Z'),
  model('claude-3-5-haiku-20241022', 'Claude Haiku 3.5', '2024-10-22T00:00:00Z'),
];

const DATED_OR_LATEST = /-(\d{8}|latest)$/;

/** `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`; `claude-3-5-haiku-latest` → `claude-3-5-haiku`. */
export function bareModelId(id: string): string {
  return id.replace(DATED_OR_LATEST, '');
}

const byId = new Map<string, FakeModel>();
const byBare = new Map<string, FakeModel>();
for (const m of FAKE_MODELS) {
  byId.set(m.id, m);
  byBare.set(bareModelId(m.id), m);
}

/** The catalogue entry for an exact id, or for a bare/dated/-latest form whose bare prefix matches one. */
export function resolveModel(id: string): FakeModel | undefined {
  return byId.get(id) ?? byBare.get(bareModelId(id));
}

export type ModelPage =
  | {
      ok: true;
      page: { data: FakeModel[]; first_id: string | null; last_id: string | null; has_more: boolean };
    }
  | { ok: false; message: string };

const INTEGER = /^\d+$/;

/** Cursor pagination: `after_id` pages forward, `before_id` pages backward, `limit` 1–1000 (default 20). */
export function listModels(query: Record<string, string>): ModelPage {
  let limit = 20;
  const rawLimit = query.limit;
  if (rawLimit !== undefined) {
    limit = INTEGER.test(rawLimit) ? Number(rawLimit) : Number.NaN;
    if (!(limit >= 1 && limit <= 1000)) {
      return { ok: false, message: 'limit: Input should be between 1 and 1000' };
    }
  }
  let start = 0;
  let end = FAKE_MODELS.length;
  let hasMore: boolean;
  if (query.before_id !== undefined) {
    const index = FAKE_MODELS.findIndex((m) => m.id === query.before_id);
    if (index < 0) return { ok: false, message: `before_id: unknown model ${query.before_id}` };
    end = index;
    start = Math.max(0, end - limit);
    hasMore = start > 0;
  } else {
    if (query.after_id !== undefined) {
      const index = FAKE_MODELS.findIndex((m) => m.id === query.after_id);
      if (index < 0) return { ok: false, message: `after_id: unknown model ${query.after_id}` };
      start = index + 1;
    }
    end = Math.min(FAKE_MODELS.length, start + limit);
    hasMore = end < FAKE_MODELS.length;
  }
  const data = FAKE_MODELS.slice(start, end);
  return {
    ok: true,
    page: {
      data,
      first_id: data[0]?.id ?? null,
      last_id: data[data.length - 1]?.id ?? null,
      has_more: hasMore,
    },
  };
}
