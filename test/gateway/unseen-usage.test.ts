// Issue 11 cause A: what Tollgate cannot see is never charged as free. Through the real server and the
// official SDK against the fake upstream, whose served record is the ground truth of what it billed.
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { costMicro, type Usage } from '../../src/pricing/cost.js';
import type { ModelPrice } from '../../src/pricing/models.js';
import type { ServedUsage } from '../fake-upstream/index.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

const MODEL = 'claude-sonnet-4-6';
const SEARCH_TOOL = { type: 'web_search_20250305' as const, name: 'web_search' as const, max_uses: 3 };

const params = (directive: string, maxTokens = 4_000) => ({
  model: MODEL,
  max_tokens: maxTokens,
  messages: [{ role: 'user' as const, content: `hello [[fake ${directive}]]` }],
});

/** What the fake billed, as the Usage Tollgate prices. */
function billed(u: ServedUsage | undefined): Usage {
  if (!u) throw new Error('the fake recorded no usage');
  return {
    inputTokens: u.input_tokens,
    outputTokens: u.output_tokens,
    cacheWrite5mTokens: u.cache_creation_5m,
    cacheWrite1hTokens: u.cache_creation_1h,
    cacheReadTokens: u.cache_read,
    webSearchRequests: u.web_search_requests,
  };
}

describe('what Tollgate cannot see is never charged as free', () => {
  let h: Harness;
  let key: string;
  let price: ModelPrice;

  beforeAll(async () => {
    h = await startHarness({ env: { TOLLGATE_UPSTREAM_TIMEOUT_MS: '1500' } });
    await h.orgCredential();
    key = await h.key();
    const found = h.gateway.deps.prices.lookup(MODEL);
    if (!found) throw new Error('no price');
    price = found;
  });
  beforeEach(() => h.fake.reset());
  afterAll(() => h.close());

  const rows = () =>
    h.installation.db.kysely
      .selectFrom('usage_records')
      .selectAll()
      .where('endpoint', '=', 'messages')
      .orderBy('at')
      .execute();
  /** Waits until the ledger holds `n` message records and returns the newest. */
  async function newest(n: number) {
    const deadline = Date.now() + 5_000;
    for (;;) {
      await h.gateway.deps.ledger.drain();
      const all = await rows();
      if (all.length >= n) return all[all.length - 1];
      if (Date.now() > deadline) throw new Error(`only ${all.length} records`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const reserved = () =>
    h.gateway.deps.budgets.snapshot('org', h.installation.orgId, 'month', Date.now()).reserved;

  /** Streams `body`, aborting right after the `cut`-th event (0-based) the SDK yields; the events seen. */
  async function streamCut(body: ReturnType<typeof params> & Record<string, unknown>, cut: number) {
    const stream = await h.client(key).messages.create({ ...body, stream: true });
    const seen: string[] = [];
    try {
      for await (const event of stream) {
        seen.push(event.type === 'content_block_start' ? `start:${event.content_block.type}` : event.type);
        if (seen.length > cut) {
          stream.controller.abort();
          break;
        }
      }
    } catch (error) {
      if (!(error instanceof Anthropic.APIUserAbortError)) throw error;
    }
    return seen;
  }

  it('a stream cut after a web search is charged the search and its result allowance', async () => {
    const before = (await rows()).length;
    const body = {
      // Events 300 ms apart: the cut reaches the fake long before its second search (a loaded machine
      // took more than the 120 ms that 60 ms left, and the fake billed two).
      ...params('web_searches=2 search_blocks=1 result_tokens=3000 fault=slow-stream delay_ms=300'),
      tools: [SEARCH_TOOL],
    };
    // Events: message_start, server_tool_use, (input_json delta), stop, web_search_tool_result: cut there.
    const seen = await streamCut(body, 4);
    expect(seen[4]).toBe('start:web_search_tool_result');
    const row = await newest(before + 1);
    const [served] = await h.fake.waitForServed(1);
    const truth = billed(served?.usage);
    expect(truth.webSearchRequests).toBe(1); // the fake billed one search before the cut
    expect(row).toMatchObject({ partial: 1, estimated: 1, outcome: 'client_aborted' });
    expect(row?.web_search_requests).toBeGreaterThanOrEqual(1);
    expect(row?.input_tokens).toBeGreaterThanOrEqual(truth.inputTokens);
    expect(row?.cost_micro).toBeGreaterThanOrEqual(costMicro(price, truth));
    expect(reserved()).toBe(0);
  });

  it('a stream cut after a thinking block with a 20 KB signature is charged the full thinking', async () => {
    const before = (await rows()).length;
    const body = params('thinking=3000 signature_kb=20 output_tokens=10 fault=slow-stream delay_ms=60');
    // message_start, thinking start, 3 summary deltas, signature delta, block stop: cut after the stop.
    const seen = await streamCut(body, 6);
    expect(seen.slice(0, 2)).toEqual(['message_start', 'start:thinking']);
    const row = await newest(before + 1);
    const [served] = await h.fake.waitForServed(1);
    const truth = billed(served?.usage);
    expect(truth.outputTokens).toBe(3_000);
    expect(row?.output_tokens).toBeGreaterThanOrEqual(3_000);
    expect(row?.cost_micro).toBeGreaterThanOrEqual(costMicro(price, truth));
    expect(row).toMatchObject({ partial: 1, estimated: 1 });
    // Positive control: the same answer read whole is charged exactly what the fake billed.
    h.fake.reset();
    const message = await h.client(key).messages.create(params('thinking=3000 output_tokens=10'));
    expect(message.usage.output_tokens).toBe(3_010);
    const whole = await newest(before + 2);
    expect(whole).toMatchObject({ output_tokens: 3_010, estimated: 0, partial: 0 });
  });

  it('at every cut point the record costs at least what the fake billed', async () => {
    const body = {
      ...params(
        'thinking=1500 redacted=700 web_searches=1 web_fetches=0 search_blocks=1 output_tokens=6 fault=slow-stream delay_ms=40',
      ),
      tools: [SEARCH_TOOL],
    };
    // message_start, thinking (start, 3 deltas, signature, stop), redacted (start, stop),
    // server_tool_use (start, delta, stop), result (start, stop), text (start, 6 deltas, stop), …
    for (const cut of [0, 1, 3, 6, 7, 8, 9, 11, 12, 13, 14, 17, 20]) {
      h.fake.reset();
      const before = (await rows()).length;
      await streamCut(body, cut);
      const row = await newest(before + 1);
      const [served] = await h.fake.waitForServed(1);
      const truth = billed(served?.usage);
      expect(row?.cost_micro, `cut after event ${cut}`).toBeGreaterThanOrEqual(costMicro(price, truth));
      expect(row?.output_tokens, `cut after event ${cut}`).toBeGreaterThanOrEqual(truth.outputTokens);
      expect(row?.web_search_requests, `cut after event ${cut}`).toBeGreaterThanOrEqual(
        truth.webSearchRequests,
      );
      expect(reserved()).toBe(0);
    }
  }, 60_000);

  it('an unknown block kind in a cut stream is charged the reserved worst case', async () => {
    const before = (await rows()).length;
    const seen = await streamCut(params('unknown_block=1 output_tokens=5 fault=slow-stream delay_ms=60'), 1);
    expect(seen[1]).toBe('start:hologram');
    const row = await newest(before + 1);
    expect(row).toMatchObject({ output_tokens: 4_000, estimated: 1, partial: 1 });
  });

  it('a request sent and then timed out is recorded at the reserved worst case', async () => {
    const before = (await rows()).length;
    const error = await h
      .client(key)
      .messages.create(params('fault=hang', 300))
      .catch((e: unknown) => e);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(504);
    const row = await newest(before + 1);
    expect(row).toMatchObject({ outcome: 'timeout', estimated: 1, output_tokens: 300 });
    expect(row?.cost_micro).toBeGreaterThan(0);
    expect(reserved()).toBe(0);
    // The spend is the worst case: the month's spent grew by exactly the record's cost.
    const spent = h.gateway.deps.budgets.snapshot('org', h.installation.orgId, 'month', Date.now()).spent;
    expect(spent).toBeGreaterThanOrEqual(row?.cost_micro ?? Number.POSITIVE_INFINITY);
  });

  it('a stream aborted before the upstream answered leaves a worst-case record', async () => {
    const before = (await rows()).length;
    const controller = new AbortController();
    const pending = h
      .client(key)
      .messages.create({ ...params('fault=hang', 250), stream: true }, { signal: controller.signal })
      .catch((e: unknown) => e);
    await h.fake.waitForServed(1); // the hang reached the fake: the request was sent
    controller.abort();
    expect(await pending).toBeInstanceOf(Anthropic.APIUserAbortError);
    const row = await newest(before + 1);
    expect(row).toMatchObject({ outcome: 'client_aborted', estimated: 1, output_tokens: 250 });
    expect(row?.cost_micro).toBeGreaterThan(0);
    expect(reserved()).toBe(0);
  });

  describe('malformed usage never throws', () => {
    let one: string;
    beforeAll(async () => {
      one = await h.key({ user: 'solo', policy: { concurrency: 1 } });
    });

    const cases: [string, number | 'worst' | 'bound'][] = [
      ['output_tokens:2.5', 3],
      ['output_tokens:-4', 'worst'],
      ['output_tokens:1e300', 'worst'],
      ['output_tokens:"12"', 'worst'],
      ['input_tokens:99999999999999999', 'worst'],
      // No output figure: a JSON answer is unreadable (worst case), a stream is bounded from its deltas.
      ['output_tokens:null', 'bound'],
    ];
    for (const stream of [false, true]) {
      for (const [bad, expected] of cases) {
        it(`${stream ? 'stream' : 'JSON'} with ${bad}: a record, an answer, the slot released`, async () => {
          const client = h.client(one);
          // Positive control: the concurrency-1 key works before.
          await client.messages.create(params('output_tokens=5', 100));
          const before = (await rows()).length;
          const body = params(`bad_usage=${bad} output_tokens=5`, 100);
          if (stream) {
            const events: string[] = [];
            for await (const e of await client.messages.create({ ...body, stream: true }))
              events.push(e.type);
            expect(events).toContain('message_stop');
          } else {
            const message = await client.messages.create(body);
            expect(message.content.length).toBeGreaterThan(0);
          }
          const row = await newest(before + 1);
          if (expected === 'worst' || (expected === 'bound' && !stream)) {
            expect(row).toMatchObject({ output_tokens: 100, estimated: 1 });
          } else if (expected === 'bound') {
            expect(row).toMatchObject({ estimated: 1 });
            expect(row?.output_tokens).toBeGreaterThanOrEqual(5);
          } else {
            expect(row).toMatchObject({ output_tokens: expected });
          }
          expect(reserved()).toBe(0);
          // The slot was released: the concurrency-1 key still answers.
          const after = await client.messages.create(params('output_tokens=5', 100));
          expect(after.type).toBe('message');
        });
      }
    }
  });
});

describe('every path settles the reservation and finishes the rate-limit ticket exactly once', () => {
  let h: Harness;
  let key: string;
  const counts = { reserved: 0, settled: 0, finished: 0 };
  let failAppends = 0;

  beforeAll(async () => {
    h = await startHarness({ env: { TOLLGATE_UPSTREAM_TIMEOUT_MS: '1500' } });
    await h.orgCredential();
    key = await h.key();
    const { budgets, limiter, ledger } = h.gateway.deps;
    const reserve = budgets.reserve;
    budgets.reserve = (...args) => {
      const result = reserve(...args);
      if (!(result instanceof Promise) && result.ok) counts.reserved++;
      return result;
    };
    const settle = budgets.settle;
    budgets.settle = (...args) => {
      counts.settled++;
      settle(...args);
    };
    const finish = limiter.finish;
    limiter.finish = (...args) => {
      counts.finished++;
      return finish(...args);
    };
    const append = ledger.append.bind(ledger);
    ledger.append = (record) => {
      if (failAppends > 0) {
        failAppends--;
        return Promise.reject(new Error('disk full (test)'));
      }
      return append(record);
    };
  });
  beforeEach(() => h.fake.reset());
  afterAll(() => h.close());

  const reserved = () =>
    h.gateway.deps.budgets.snapshot('org', h.installation.orgId, 'month', Date.now()).reserved;
  /** Waits until every admitted request has settled (a cut stream settles after its client left). */
  async function balanced(): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (counts.settled < counts.reserved || counts.finished < counts.reserved) {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 50)); // a double settle would show up here
    expect(counts.settled).toBe(counts.reserved);
    expect(counts.finished).toBe(counts.reserved);
    expect(reserved()).toBe(0);
  }
  const swallow = (p: Promise<unknown>) => p.catch((e: unknown) => e);

  const paths: [string, () => Promise<unknown>][] = [
    ['success (JSON)', () => h.client(key).messages.create(params('output_tokens=5', 50))],
    [
      'success (stream)',
      async () => {
        for await (const _ of await h
          .client(key)
          .messages.create({ ...params('output_tokens=5', 50), stream: true }));
      },
    ],
    ['upstream refusal (400)', () => swallow(h.client(key).messages.create(params('fault=400', 50)))],
    [
      'upstream error after retries (529)',
      () => swallow(h.client(key).messages.create(params('fault=529', 50))),
    ],
    [
      'connection reset after sending',
      () => swallow(h.client(key).messages.create(params('fault=reset', 50))),
    ],
    ['timeout', () => swallow(h.client(key).messages.create(params('fault=hang', 50)))],
    [
      'client abort mid-stream',
      async () => {
        const stream = await h
          .client(key)
          .messages.create({ ...params('output_tokens=20 fault=slow-stream delay_ms=30', 50), stream: true });
        for await (const e of stream) if (e.type === 'content_block_delta') break;
      },
    ],
    [
      'client abort before the upstream answered',
      async () => {
        const controller = new AbortController();
        const pending = swallow(
          h
            .client(key)
            .messages.create({ ...params('fault=hang', 50), stream: true }, { signal: controller.signal }),
        );
        await h.fake.waitForServed(1);
        controller.abort();
        await pending;
      },
    ],
    [
      'malformed usage (JSON)',
      () => h.client(key).messages.create(params('bad_usage=output_tokens:2.5', 50)),
    ],
    [
      'malformed usage (stream)',
      async () => {
        const body = { ...params('bad_usage=output_tokens:2.5', 50), stream: true as const };
        for await (const _ of await h.client(key).messages.create(body));
      },
    ],
    [
      'an exception while recording (JSON)',
      () => {
        failAppends = 1;
        return swallow(h.client(key).messages.create(params('output_tokens=5', 50)));
      },
    ],
    [
      'an exception while recording (stream)',
      async () => {
        failAppends = 1;
        // The answer is not passed on as complete without its record: the client sees a broken stream.
        const outcome = await swallow(
          (async () => {
            const stream = await h
              .client(key)
              .messages.create({ ...params('output_tokens=5', 50), stream: true });
            for await (const _ of stream);
          })(),
        );
        expect(outcome).toBeInstanceOf(Error);
      },
    ],
  ];
  for (const [name, drive] of paths) {
    it(name, async () => {
      const before = counts.reserved;
      await drive();
      await balanced();
      expect(counts.reserved).toBe(before + 1);
    });
  }
});
