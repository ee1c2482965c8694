// boundRequest: the context window the request is served with, the web_fetch content cap it injects, and
// the long-context rate a bound above the threshold reaches.
import { describe, expect, it } from 'vitest';
import { costMicro, worstCaseMicro, worstCaseUsage } from '../pricing/cost.js';
import { createPriceBook, type ModelPrice } from '../pricing/models.js';
import type { AdmissionPolicy } from './admission.js';
import { asksForLongContext, boundRequest, contextWindow } from './request-bound.js';

const prices = createPriceBook({});
function price(model: string): ModelPrice {
  const p = prices.lookup(model);
  if (!p) throw new Error(model);
  return p;
}

const policy: AdmissionPolicy = {
  modelsAllowed: null,
  orgId: 'org',
  promptCaching: 'off',
  webSearchDefaultMaxUses: 5,
  imageTokenAllowance: 1_600,
  documentTokenAllowance: 200_000,
};

const BETA_1M = 'context-1m-2025-08-07';
const docByUrl = { type: 'document', source: { type: 'url', url: 'https://example.com/a.pdf' } };

function bodyWith(content: unknown[], extra: Record<string, unknown> = {}) {
  return { model: 'm', max_tokens: 100, messages: [{ role: 'user', content }], ...extra };
}

function bounded(model: string, body: Record<string, unknown>, beta?: string | string[]) {
  const result = boundRequest(
    policy,
    price(model),
    body,
    beta === undefined ? {} : { 'anthropic-beta': beta },
  );
  if (!result.ok) throw new Error(result.unbounded);
  return result;
}

describe('the context window', () => {
  it('is the model own, or 1M when any anthropic-beta value asks for it', () => {
    expect(contextWindow(price('claude-sonnet-4-5'), {})).toBe(200_000);
    expect(contextWindow(price('claude-sonnet-4-6'), {})).toBe(1_000_000);
    expect(contextWindow(price('claude-opus-4-6-20260205'), {})).toBe(1_000_000);
    expect(contextWindow(price('claude-haiku-4-5'), {})).toBe(200_000);
    expect(contextWindow(price('claude-sonnet-4-5'), { 'anthropic-beta': BETA_1M })).toBe(1_000_000);
    expect(asksForLongContext(`prompt-caching-2024-07-31,${BETA_1M}`)).toBe(true);
    expect(asksForLongContext(['interleaved-thinking-2025-05-14', ` ${BETA_1M}`])).toBe(true);
    expect(asksForLongContext(['interleaved-thinking-2025-05-14'])).toBe(false);
    expect(asksForLongContext(undefined)).toBe(false);
  });

  it('lets a document by reference fill the window, and caps the bound there', () => {
    const body = bodyWith([docByUrl, { type: 'text', text: 'summarise' }]);
    expect(bounded('claude-sonnet-4-5', body).bound.inputTokensUpperBound).toBe(200_000);
    // With the 1M beta (one of several values), the same request may read a million tokens.
    const long = bounded('claude-sonnet-4-5', body, `fine-grained-tool-streaming-2025-05-14, ${BETA_1M}`);
    expect(long.bound.inputTokensUpperBound).toBe(1_000_000);
    // Natively 1M models need no beta.
    expect(bounded('claude-sonnet-4-6', body).bound.inputTokensUpperBound).toBe(1_000_000);
    expect(bounded('claude-opus-4-6', body).bound.inputTokensUpperBound).toBe(1_000_000);
    // Positive control: text alone stays far below the window.
    expect(
      bounded('claude-sonnet-4-6', bodyWith([{ type: 'text', text: 'hi' }])).bound.inputTokensUpperBound,
    ).toBeLessThan(1_000);
  });

  it('reserves the long-context rate once the bound passes its threshold, and worstCaseUsage agrees', () => {
    const body = bodyWith([docByUrl]);
    const p = price('claude-sonnet-4-5');
    const long = bounded('claude-sonnet-4-5', body, BETA_1M);
    // A million prompt tokens at the long-context 5 min write rate ($7.50/MTok) + 100 output at $22.50.
    expect(long.worstCaseMicro).toBe(7_500_000 + 2_250);
    expect(costMicro(p, worstCaseUsage(p, long.bound))).toBe(long.worstCaseMicro);
    expect(worstCaseMicro(p, long.bound)).toBe(long.worstCaseMicro);
  });
});

describe('server tools', () => {
  it('injects max_content_tokens into a web_fetch tool without one, and bounds what it forwards', () => {
    const fetchTool = { type: 'web_fetch_20250910', name: 'web_fetch', max_uses: 2 };
    const result = bounded(
      'claude-sonnet-4-6',
      bodyWith([{ type: 'text', text: 'read it' }], { tools: [fetchTool] }),
    );
    const tools = result.forwarded.tools as Array<Record<string, unknown>>;
    expect(tools[0]).toMatchObject({ max_uses: 2, max_content_tokens: 25_000 });
    expect(fetchTool).not.toHaveProperty('max_content_tokens');
    // A client's own cap is kept and bounds the results instead.
    const own = { ...fetchTool, max_content_tokens: 1_000 };
    const smaller = bounded(
      'claude-sonnet-4-6',
      bodyWith([{ type: 'text', text: 'read it' }], { tools: [own] }),
    );
    expect(smaller.forwarded.tools).toEqual([own]);
    expect(smaller.bound.inputTokensUpperBound).toBeLessThan(result.bound.inputTokensUpperBound);
  });

  it('bounds each sampling of a server-tool loop at the window', () => {
    const search = { type: 'web_search_20250305', name: 'web_search', max_uses: 3 };
    const body = bodyWith([docByUrl], { tools: [search] });
    // Four samplings, each of which may read a full window.
    expect(bounded('claude-sonnet-4-5', body).bound.inputTokensUpperBound).toBe(4 * 200_000);
    expect(bounded('claude-sonnet-4-5', body).bound.webSearchUses).toBe(3);
  });
});
