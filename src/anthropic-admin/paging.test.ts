import { describe, expect, it } from 'vitest';
import { AppError } from '../lib/errors.js';
import { allItems, cursorStep, type PageStep, tokenStep } from './paging.js';

/** A paged list of `items` served `size` at a time, by index cursor. */
function pages(items: number[], size: number) {
  const asked: Array<number | null> = [];
  const fetch = async (cursor: number | null): Promise<PageStep<number, number>> => {
    asked.push(cursor);
    const start = cursor ?? 0;
    const end = Math.min(items.length, start + size);
    return { items: items.slice(start, end), next: end < items.length ? end : null };
  };
  return { fetch, asked };
}

describe('allItems', () => {
  it('collects every page in order', async () => {
    const { fetch, asked } = pages([1, 2, 3, 4, 5], 2);
    expect(await allItems(fetch)).toEqual([1, 2, 3, 4, 5]);
    expect(asked).toEqual([null, 2, 4]);
  });

  it('stops at maxPages when the server always has more; one page fewer than needed fails, exactly enough works', async () => {
    const { fetch } = pages([1, 2, 3, 4, 5, 6], 2);
    await expect(allItems(fetch, 2)).rejects.toThrow(/after 2 pages; stopped/);
    expect(await allItems(fetch, 3)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses a server that hands back a cursor it gave before', async () => {
    let calls = 0;
    const loop = async (): Promise<PageStep<number, string>> => ({ items: [calls++], next: 'same' });
    const error = await allItems(loop).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).message).toContain('same page twice');
    expect(calls).toBe(2);
  });
});

describe('page steps', () => {
  it('cursor lists continue from last_id only while has_more', () => {
    expect(cursorStep({ data: [1], last_id: 'b', has_more: true }).next).toBe('b');
    expect(cursorStep({ data: [1], last_id: 'b', has_more: false }).next).toBeNull();
    expect(cursorStep({ data: [], last_id: null, has_more: true }).next).toBeNull();
  });

  it('reports continue from next_page only while has_more', () => {
    expect(tokenStep({ data: [1], has_more: true, next_page: 'p2' }).next).toBe('p2');
    expect(tokenStep({ data: [1], has_more: false, next_page: 'p2' }).next).toBeNull();
    expect(tokenStep({ data: [1], has_more: true, next_page: null }).next).toBeNull();
  });
});
