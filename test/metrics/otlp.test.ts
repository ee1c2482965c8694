// The OTLP/HTTP push, received by a local collector stub as the exporter sends it: names, values,
// attributes and the interval; a collector down for a while loses nothing; one that never answers
// adds nothing to request latency; shutdown flushes once, bounded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENAI, OTLP } from '../../src/metrics/names.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import {
  attrs,
  type Collector,
  metricsOf,
  type OtlpPayload,
  startCollector,
  sumOf,
} from './otlp-collector.js';

const SMALL = {
  model: 'claude-haiku-4-5',
  max_tokens: 50,
  messages: [{ role: 'user' as const, content: 'hello there [[fake output_tokens=9]]' }],
};

const yaml = (endpoint: string, intervalS: number) =>
  `claude:\n  otel_endpoint: "${endpoint}"\n  otel_interval_s: ${intervalS}\n`;

async function ledgerSums(h: Harness) {
  const rows = await h.installation.db.kysely.selectFrom('usage_records').selectAll().execute();
  const sum = (f: (r: (typeof rows)[number]) => number) => rows.reduce((s, r) => s + f(r), 0);
  return {
    rows,
    input: sum((r) => r.input_tokens),
    output: sum((r) => r.output_tokens),
    cacheRead: sum((r) => r.cache_read_tokens),
    cacheWrite: sum((r) => r.cache_write_5m_tokens + r.cache_write_1h_tokens),
    costMicro: sum((r) => r.cost_micro),
  };
}

function last(c: Collector): OtlpPayload {
  const r = c.received[c.received.length - 1];
  if (!r) throw new Error('nothing received');
  return r.payload;
}

/** Waits for the first payload received after now (the next export). */
async function nextExport(c: Collector, timeoutMs = 10_000): Promise<OtlpPayload> {
  await c.waitFor(c.received.length + 1, timeoutMs);
  return last(c);
}

describe('OTLP push to a collector', () => {
  let c: Collector;
  let h: Harness;

  beforeAll(async () => {
    c = await startCollector();
    h = await startHarness({ yaml: yaml(c.url, 1) });
    await h.orgCredential();
    await h.services.teams.add(h.admin, { name: 'platform' });
  }, 30_000);

  afterAll(async () => {
    await h?.close();
    await c?.close();
  });

  it('sends claude.* and gen_ai.* metrics with their attributes and the ledger values, every interval', async () => {
    const alice = await h.key({ user: 'alice', team: 'platform' });
    const bob = await h.key({ user: 'bob', team: null });
    await h.client(alice).messages.create(SMALL);
    await h.client(alice).messages.create(SMALL);
    const stream = await h.client(bob).messages.create({ ...SMALL, stream: true });
    for await (const _ of stream) {
      // drained
    }
    const before = c.received.length;
    await c.waitFor(before + 3, 10_000);
    const payload = last(c);
    const sums = await ledgerSums(h);

    const received = c.received[c.received.length - 1];
    expect(received?.contentType).toContain('application/json');
    const resource = attrs(payload.resourceMetrics[0]?.resource?.attributes);
    expect(resource['service.name']).toBe('tollgate');

    const metrics = metricsOf(payload);
    for (const name of [
      OTLP.tokensInput,
      OTLP.tokensOutput,
      OTLP.cost,
      GENAI.tokenUsage,
      GENAI.operationDuration,
    ])
      expect(metrics.has(name), name).toBe(true);
    // Cumulative sums (temporality 2) equal to the ledger's rows.
    expect(metrics.get(OTLP.tokensInput)?.sum?.aggregationTemporality).toBe(2);
    expect(metrics.get(OTLP.tokensInput)?.sum?.isMonotonic).toBe(true);
    expect(sumOf(payload, OTLP.tokensInput)).toBe(sums.input);
    expect(sumOf(payload, OTLP.tokensOutput)).toBe(sums.output);
    expect(sums.output).toBe(27);
    expect(sumOf(payload, OTLP.tokensCacheRead)).toBe(sums.cacheRead);
    expect(sumOf(payload, OTLP.tokensCacheCreation)).toBe(sums.cacheWrite);
    expect(Math.round(sumOf(payload, OTLP.cost) * 1_000_000)).toBe(sums.costMicro);
    expect(sums.costMicro).toBeGreaterThan(0);
    // model, user, team attributes.
    expect(
      sumOf(payload, OTLP.tokensOutput, { model: 'claude-haiku-4-5', user: 'alice', team: 'platform' }),
    ).toBe(18);
    expect(sumOf(payload, OTLP.tokensOutput, { user: 'bob', team: 'none' })).toBe(9);
    expect(metrics.get(OTLP.cost)?.unit).toBe('USD');

    // gen_ai.client.token.usage: one histogram point per model and token type, input counting cache tokens.
    const usage = metrics.get(GENAI.tokenUsage)?.histogram?.dataPoints ?? [];
    const input = usage.find((p) => attrs(p.attributes)[GENAI.tokenType] === 'input');
    const output = usage.find((p) => attrs(p.attributes)[GENAI.tokenType] === 'output');
    expect(attrs(input?.attributes)).toEqual({
      [GENAI.operationName]: 'chat',
      [GENAI.providerName]: 'anthropic',
      [GENAI.requestModel]: 'claude-haiku-4-5',
      [GENAI.tokenType]: 'input',
    });
    expect(Number(input?.count)).toBe(3);
    expect(input?.sum).toBe(sums.input + sums.cacheRead + sums.cacheWrite);
    expect(output?.sum).toBe(27);
    expect(input?.bucketCounts?.reduce((s: number, n) => s + Number(n), 0)).toBe(3);
    expect(metrics.get(GENAI.tokenUsage)?.unit).toBe('{token}');
    const duration = metrics.get(GENAI.operationDuration)?.histogram?.dataPoints ?? [];
    expect(duration.reduce((s, p) => s + Number(p.count), 0)).toBe(3);
    expect(metrics.get(GENAI.operationDuration)?.unit).toBe('s');

    // The interval: exports about 1 s apart (robust bounds: timers on a busy machine drift).
    const times = c.received.slice(-3).map((r) => r.at);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    for (const gap of gaps) {
      expect(gap).toBeGreaterThan(400);
      expect(gap).toBeLessThan(3000);
    }
  }, 30_000);

  it('loses nothing while the collector is down', async () => {
    const carol = await h.key({ user: 'carol', team: 'platform' });
    await c.stop();
    const down = c.received.length;
    for (let i = 0; i < 3; i++) await h.client(carol).messages.create(SMALL);
    // Several intervals pass with the collector unreachable.
    await new Promise((r) => setTimeout(r, 2500));
    expect(c.received.length).toBe(down);
    await c.start();
    const payload = await nextExport(c);
    const sums = await ledgerSums(h);
    expect(sumOf(payload, OTLP.tokensOutput, { user: 'carol' })).toBe(27);
    expect(sumOf(payload, OTLP.tokensOutput)).toBe(sums.output);
    expect(Math.round(sumOf(payload, OTLP.cost) * 1_000_000)).toBe(sums.costMicro);
  }, 30_000);
});

describe('OTLP push: shutdown and an empty endpoint', () => {
  it('exports once more when the server stops (bounded), and not at all without an endpoint', async () => {
    const c = await startCollector();
    const h = await startHarness({ yaml: yaml(c.url, 3600) });
    try {
      expect(h.gateway.metrics.otlp()).not.toBeNull();
      await h.orgCredential();
      const key = await h.key({ user: 'dana' });
      await h.client(key).messages.create(SMALL);
      expect(c.received.length).toBe(0);
    } finally {
      await h.close();
    }
    expect(c.received.length).toBe(1);
    expect(sumOf(last(c), OTLP.tokensOutput, { user: 'dana' })).toBe(9);
    await c.close();

    const off = await startHarness();
    try {
      expect(off.gateway.metrics.otlp()).toBeNull();
    } finally {
      await off.close();
    }
  }, 30_000);
});

/** Median milliseconds of `n` sequential small requests. */
async function medianLatency(h: Harness, key: string, n: number): Promise<number> {
  const client = h.client(key);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await client.messages.create(SMALL);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(n / 2)] as number;
}

describe('OTLP push to a collector that never answers', () => {
  it('adds nothing to request latency, and shuts down within its bound', async () => {
    const c = await startCollector('hang');
    const on = await startHarness({ yaml: yaml(c.url, 1) });
    const off = await startHarness();
    try {
      await on.orgCredential();
      await off.orgCredential();
      const keyOn = await on.key({ user: 'erin' });
      const keyOff = await off.key({ user: 'erin' });
      // Warm both, then interleave the measurements so machine load affects both alike.
      await medianLatency(on, keyOn, 5);
      await medianLatency(off, keyOff, 5);
      const withExport: number[] = [];
      const without: number[] = [];
      const started = Date.now();
      for (let round = 0; round < 4; round++) {
        withExport.push(await medianLatency(on, keyOn, 15));
        without.push(await medianLatency(off, keyOff, 15));
      }
      // Exports were being attempted (and hanging) during the measurement.
      if (Date.now() - started < 2500) await new Promise((r) => setTimeout(r, 2500 - (Date.now() - started)));
      expect(c.arrivals).toBeGreaterThanOrEqual(2);
      expect(c.received.length).toBe(0);
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
      // Robust: a hanging export would add its whole timeout (≥ 1 s) to a request it blocked.
      expect(median(withExport)).toBeLessThan(median(without) * 2 + 10);
      expect(Math.max(...withExport)).toBeLessThan(500);
    } finally {
      const t = performance.now();
      await on.close();
      expect(performance.now() - t).toBeLessThan(8000);
      await off.close();
      await c.close();
    }
  }, 60_000);
});
