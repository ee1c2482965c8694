// Cursor pagination of list operations: a list is ordered by a stable key (name or id, then id), and
// the cursor is that key of the last row shown, opaque to clients (base64url JSON).
import { z } from 'zod/v4';
import { AppError } from '../lib/errors.js';

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 500;

export const pageQuery = {
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE)
    .optional()
    .meta({ description: `rows per page (default ${DEFAULT_PAGE}, at most ${MAX_PAGE})` }),
  cursor: z.string().max(512).optional().meta({ description: 'the next_cursor of the previous page' }),
};

/** A page of a list: its rows and the cursor of the next page (null at the end). */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next_cursor: z.string().nullable() });
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/** The sort key of the last row seen, or null for the first page; a malformed cursor is refused. */
export function decodeCursor(cursor: string | undefined, arity: number): (string | number)[] | null {
  if (cursor === undefined) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === arity &&
      value.every((v) => typeof v === 'string' || typeof v === 'number')
    )
      return value;
  } catch {
    // refused below
  }
  throw new AppError('invalid_input', 'the cursor is not one this server handed out');
}

/**
 * Pages an ordered list held in memory (lists of teams, users, credentials, keys and profiles are
 * small: one row per object an admin created). `keyOf` gives each row's sort key, ascending.
 */
export function pageList<T>(
  rows: readonly T[],
  keyOf: (row: T) => readonly (string | number)[],
  query: { limit?: number | undefined; cursor?: string | undefined },
  arity: number,
): { rows: T[]; next_cursor: string | null } {
  const after = decodeCursor(query.cursor, arity);
  const limit = query.limit ?? DEFAULT_PAGE;
  // Sorted here, by the same comparison the cursor uses (a database's collation may order names otherwise).
  rows = [...rows].sort((a, b) => compareKeys(keyOf(a), keyOf(b)));
  const start = after === null ? 0 : rows.findIndex((r) => compareKeys(keyOf(r), after) > 0);
  const from = start === -1 ? rows.length : start;
  const page = rows.slice(from, from + limit);
  const last = page[page.length - 1];
  const more = from + limit < rows.length;
  return { rows: page, next_cursor: more && last !== undefined ? encodeCursor(keyOf(last)) : null };
}

export function compareKeys(a: readonly (string | number)[], b: readonly (string | number)[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}
