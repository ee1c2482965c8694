// The property behind "budgets never overspend": for any Messages request Tollgate admits, what the upstream
// can bill is at most what Tollgate reserved. Requests are generated with fast-check, sent through the real
// gateway with the official SDK to the fake upstream in adversarial billing mode (test/fake-upstream/
// adversarial.ts: the most Anthropic's documented rules allow, priced with its own table), and the fake's
// bill is compared with the reservation read from outside Tollgate's pricing: each case gets a fresh key
// with a monthly budget L, so the reservation is L − `x-tollgate-budget-remaining-usd` of the answer.
// Shared by test/gateway/bound-property.test.ts (a few hundred cases) and test/stress/ (thousands).
import Anthropic from '@anthropic-ai/sdk';
import fc from 'fast-check';
import { adversarialCostMicro } from '../fake-upstream/adversarial.js';
import type { Harness } from '../helpers/gateway.js';

type Json = Record<string, unknown>;

/** $1,000,000: far above any generated worst case, so the budget never refuses. */
export const BUDGET_MICRO = 1_000_000_000_000;

const MODELS = [
  'claude-sonnet-4-5',
  'claude-sonnet-4-5-20250929',
  'claude-sonnet-4-20250514',
  'claude-sonnet-4-6',
  'claude-opus-4-6',
  'claude-opus-4-8',
  'claude-opus-4-1',
  'claude-opus-4-5-20251101',
  'claude-haiku-4-5',
  'claude-3-5-haiku-20241022',
  'claude-sonnet-5',
];
const BETAS = [
  'context-1m-2025-08-07',
  'interleaved-thinking-2025-05-14',
  'fine-grained-tool-streaming-2025-05-14',
];

const text = fc.oneof(
  fc.string({ maxLength: 120 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constantFrom('"\\\n\t\u0000', '💸'.repeat(20), 'é'.repeat(50)),
);
const cacheControl = fc.constantFrom(
  undefined,
  { type: 'ephemeral' },
  { type: 'ephemeral', ttl: '5m' },
  { type: 'ephemeral', ttl: '1h' },
);

function withCache(block: Json, cc: unknown): Json {
  if (cc !== undefined) block.cache_control = cc;
  return block;
}

const textBlock = fc.tuple(text, cacheControl).map(([t, cc]) => withCache({ type: 'text', text: t }, cc));
const image = fc
  .tuple(
    fc.constantFrom(
      { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgoAAAANSUhEUg==' },
      { type: 'url', url: 'https://example.com/cat.png' },
      { type: 'file', file_id: 'file_img_1' },
    ),
    cacheControl,
  )
  .map(([source, cc]) => withCache({ type: 'image', source }, cc));
const documentBlock = fc
  .tuple(
    fc.oneof(
      text.map((data) => ({ type: 'text', media_type: 'text/plain', data })),
      fc.array(textBlock, { maxLength: 3 }).map((content) => ({ type: 'content', content })),
      fc.constant({ type: 'url', url: 'https://example.com/paper.pdf' }),
      fc.constant({ type: 'file', file_id: 'file_doc_1' }),
      fc.constant({ type: 'base64', media_type: 'application/pdf', data: 'JVBERi0xLjQK' }),
    ),
    fc.option(text, { nil: undefined }),
    cacheControl,
  )
  .map(([source, title, cc]) => {
    const doc: Json = { type: 'document', source };
    if (title !== undefined) doc.title = title;
    return withCache(doc, cc);
  });
const searchResult = fc
  .tuple(text, fc.array(textBlock, { minLength: 1, maxLength: 3 }), cacheControl)
  .map(([title, content, cc]) =>
    withCache({ type: 'search_result', source: 'https://example.com/r', title, content }, cc),
  );

/** Content blocks, nested through tool results and unknown (future) blocks. */
const { block } = fc.letrec<{ block: Json }>((tie) => ({
  block: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    textBlock,
    image,
    documentBlock,
    searchResult,
    fc.tuple(text, text).map(([thinking, signature]) => ({ type: 'thinking', thinking, signature })),
    text.map((data) => ({ type: 'redacted_thinking', data })),
    fc
      .dictionary(fc.string({ maxLength: 8 }), text, { maxKeys: 3 })
      .map((input) => ({ type: 'tool_use', id: 'toolu_1', name: 'lookup', input })),
    fc
      .tuple(fc.oneof(text, fc.array(tie('block'), { maxLength: 3 })), cacheControl)
      .map(([content, cc]) => withCache({ type: 'tool_result', tool_use_id: 'toolu_1', content }, cc)),
    fc
      .array(tie('block'), { maxLength: 3 })
      .map((items) => ({ type: 'future_block_type', note: 'unknown to Tollgate', items })),
  ),
}));

const customTool = fc
  .tuple(text, cacheControl)
  .map(([description, cc]) =>
    withCache({ name: 'lookup', description, input_schema: { type: 'object', properties: {} } }, cc),
  );
const webSearch = fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }).map((maxUses) => {
  const tool: Json = { type: 'web_search_20250305', name: 'web_search' };
  if (maxUses !== undefined) tool.max_uses = maxUses;
  return tool;
});
const webFetch = fc
  .tuple(
    fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    fc.option(fc.integer({ min: 1, max: 40_000 }), { nil: undefined }),
  )
  .map(([maxUses, maxContent]) => {
    const tool: Json = { type: 'web_fetch_20250910', name: 'web_fetch' };
    if (maxUses !== undefined) tool.max_uses = maxUses;
    if (maxContent !== undefined) tool.max_content_tokens = maxContent;
    return tool;
  });
/** Rare on purpose: Tollgate must refuse these (results of unknown size). */
const unboundable = fc.constant({ type: 'code_execution_20250825', name: 'code_execution' });

const content = fc.oneof(text, fc.array(block, { minLength: 1, maxLength: 4 }));

export interface Case {
  body: Json;
  betas: string[];
}

export const caseArbitrary: fc.Arbitrary<Case> = fc
  .record({
    model: fc.constantFrom(...MODELS),
    maxTokens: fc.integer({ min: 1, max: 4_096 }),
    thinking: fc.boolean(),
    system: fc.option(fc.oneof(text, fc.array(textBlock, { minLength: 1, maxLength: 2 })), {
      nil: undefined,
    }),
    turns: fc.array(content, { minLength: 1, maxLength: 3 }),
    tools: fc.array(
      fc.oneof(
        { weight: 4, arbitrary: customTool },
        { weight: 3, arbitrary: webSearch },
        { weight: 3, arbitrary: webFetch },
        { weight: 1, arbitrary: unboundable },
      ),
      { maxLength: 3 },
    ),
    topCache: cacheControl,
    betas: fc.subarray(BETAS),
  })
  .map((r) => {
    const body: Json = {
      model: r.model,
      max_tokens: r.maxTokens,
      messages: r.turns.map((c, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: c })),
    };
    if (r.system !== undefined) body.system = r.system;
    if (r.tools.length > 0) body.tools = r.tools;
    if (r.thinking && r.maxTokens > 1_024) body.thinking = { type: 'enabled', budget_tokens: 1_024 };
    if (r.topCache !== undefined) body.cache_control = r.topCache;
    return { body, betas: r.betas };
  });

/** "123.45" → 123450000 micro-USD, exactly (no float arithmetic). */
export function usdToMicro(text: string): number {
  const [whole = '0', frac = ''] = text.split('.');
  return Number(whole) * 1_000_000 + Number(frac.padEnd(6, '0').slice(0, 6));
}

export interface Tally {
  admitted: number;
  refused: number;
  /** Most the fake's bill came to, as a share of the reservation. */
  worstShare: number;
}

/** Sends one case and throws when the upstream's bill exceeds the reservation. */
export async function checkCase(h: Harness, c: Case, tally: Tally): Promise<void> {
  const key = await h.key({ user: 'bound-prop', policy: { monthlyBudgetMicro: BUDGET_MICRO } });
  // The official SDK, quiet: it warns about deprecated models and thinking modes the generator uses.
  const client = new Anthropic({ apiKey: key, baseURL: h.url, maxRetries: 0, logLevel: 'off' });
  const before = h.fake.served.length;
  const headers = c.betas.length > 0 ? { 'anthropic-beta': c.betas.join(', ') } : undefined;
  let response: Response;
  try {
    const params = c.body as unknown as Anthropic.MessageCreateParamsNonStreaming;
    ({ response } = await client.messages.create(params, { headers }).withResponse());
  } catch (error) {
    if (error instanceof Anthropic.BadRequestError && /cannot bound the cost/.test(error.message)) {
      // Refused with its reason; only bodies with a tool of unknown result size may be refused.
      if (!JSON.stringify(c.body).includes('code_execution_')) throw new Error(`refused: ${error.message}`);
      tally.refused++;
      return;
    }
    throw error;
  }
  const served = h.fake.served[before];
  if (!served?.usage || !served.model) throw new Error('the fake served no Messages request');
  const billed = adversarialCostMicro(served.model, served.usage, served.headers.anthropicBeta);
  const remaining = response.headers.get('x-tollgate-budget-remaining-usd');
  if (remaining === null) throw new Error('no x-tollgate-budget-remaining-usd header');
  const reserved = BUDGET_MICRO - usdToMicro(remaining);
  tally.admitted++;
  tally.worstShare = Math.max(tally.worstShare, billed / reserved);
  if (billed > reserved) {
    throw new Error(
      `the upstream billed ${billed} µUSD but Tollgate reserved ${reserved} µUSD (usage ${JSON.stringify(served.usage)})`,
    );
  }
}
