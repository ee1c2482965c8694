// Walking paged Admin API answers, bounded so a misbehaving server cannot make us loop forever.
import { AppError } from '../lib/errors.js';

/** One fetched page: its items and the cursor of the next page (null when this is the last). */
export interface PageStep<T, C> {
  readonly items: readonly T[];
  readonly next: C | null;
}

export const DEFAULT_MAX_PAGES = 1000;

/**
 * Yields every item of every page, starting with cursor null. Stops at the last page; refuses a
 * cursor seen before (a server repeating itself) and more than `maxPages` pages.
 */
export async function* eachItem<T, C>(
  fetchPage: (cursor: C | null) => Promise<PageStep<T, C>>,
  maxPages: number = DEFAULT_MAX_PAGES,
): AsyncGenerator<T> {
  const seen = new Set<C>();
  let cursor: C | null = null;
  for (let pages = 0; ; pages++) {
    if (pages >= maxPages) {
      throw new AppError(
        'upstream_error',
        `Anthropic kept answering "more pages" after ${maxPages} pages; stopped`,
        {
          max_pages: maxPages,
        },
      );
    }
    const step: PageStep<T, C> = await fetchPage(cursor);
    yield* step.items;
    if (step.next === null) return;
    if (seen.has(step.next)) {
      throw new AppError('upstream_error', 'Anthropic answered the same page twice; stopped paging', {});
    }
    seen.add(step.next);
    cursor = step.next;
  }
}

/** Collects every item of a paged list into an array. */
export async function allItems<T, C>(
  fetchPage: (cursor: C | null) => Promise<PageStep<T, C>>,
  maxPages: number = DEFAULT_MAX_PAGES,
): Promise<T[]> {
  const out: T[] = [];
  for await (const item of eachItem(fetchPage, maxPages)) out.push(item);
  return out;
}

/** Lists (`?limit=&after_id=`): the next cursor is `last_id` while `has_more`. */
export function cursorStep<T>(page: {
  data: readonly T[];
  last_id: string | null;
  has_more: boolean;
}): PageStep<T, string> {
  return { items: page.data, next: page.has_more && page.last_id !== null ? page.last_id : null };
}

/** Reports (`?page=`): the next cursor is `next_page` while `has_more`. */
export function tokenStep<T>(page: {
  data: readonly T[];
  has_more: boolean;
  next_page: string | null;
}): PageStep<T, string> {
  return { items: page.data, next: page.has_more && page.next_page !== null ? page.next_page : null };
}
