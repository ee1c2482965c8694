// GET /metrics after mixed traffic through the official SDK against the fake upstream: promtool accepts
// it, the token and cost counters equal the ledger's rows, users past metrics.max_user_labels are one
// "other", refusals and upstream errors are counted, the bearer is required, and no secret shows.
import { randomBytes } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROM } from '../../src/metrics/names.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { findLeaks } from '../helpers/secrets.js';
import { hasPromtool, labelValues, parseSamples, promtoolCheck, type Sample, total } from './text-format.js';

const SMALL = {
  model: 'claude-haiku-4-5',
  max_tokens: 50,
  messages: [{ role: 'user' as const, content: 'hello there [[fake output_tokens=7]]' }],
};
/** Worst case far above the team budget below: refused before it goes upstream. */
const LARGE = { ...SMALL, model: 'claude-sonnet-4-6', max_tokens: 4000 };

describe('GET /metrics', () => {
  let h: Harness;
  const metricsToken = `tgm-${randomBytes(24).toString('hex')}`;
  const secrets: string[] = [metricsToken];
  let text = '';
  let samples: Sample[] = [];
  /** A user's gateway key: a credential of another kind, refused as the metrics bearer. */
  let userKey = '';

  const scrape = (token: string | null) =>
    fetch(`${h.url}/metrics`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });

  beforeAll(async () => {
    h = await startHarness({
      env: { TG_METRICS_TOKEN: metricsToken },
      yaml: 'metrics:\n  token: env:TG_METRICS_TOKEN\n  max_user_labels: 2\n',
    });
    secrets.push(await h.orgCredential(), h.adminToken);
    await h.services.teams.add(h.admin, { name: 'platform' });
    await h.services.teams.add(h.admin, { name: 'data', monthlyBudgetMicro: 20_000 });
    // Four users, two labels: alice and bob (seen first) keep theirs, carol and dave become "other".
    const alice = await h.key({ user: 'alice', team: 'platform' });
    const bob = await h.key({ user: 'bob', team: 'platform', policy: { rpm: 1 } });
    const carol = await h.key({ user: 'carol', team: 'data' });
    const dave = await h.key({ user: 'dave', team: null });
    secrets.push(alice, bob, carol, dave);
    userKey = alice;

    await h.client(alice).messages.create(SMALL);
    const stream = await h.client(alice).messages.create({ ...SMALL, stream: true });
    for await (const _ of stream) {
      // drained
    }
    await h.client(alice).messages.countTokens({ model: SMALL.model, messages: SMALL.messages });
    await h.client(alice).models.list();
    await h.client(bob).messages.create(SMALL);
    // bob's second request in the minute: his rpm of 1 refuses it.
    await expect(h.client(bob).messages.create(SMALL)).rejects.toBeInstanceOf(Anthropic.RateLimitError);
    await h.client(carol).messages.create(SMALL);
    // carol's team budget cannot cover this one's worst case.
    await expect(h.client(carol).messages.create(LARGE)).rejects.toBeInstanceOf(Anthropic.RateLimitError);
    await h.client(dave).messages.create({
      ...SMALL,
      messages: [{ role: 'user', content: 'cached [[fake output_tokens=3]]' }],
    });
    // A cache write (it costs more than plain input: a negative saving) and then its read (a positive
    // one): each goes to its own counter, so neither counter ever decreases.
    const cached = {
      ...SMALL,
      system: [
        {
          type: 'text' as const,
          text: 'a long system prompt '.repeat(40),
          cache_control: { type: 'ephemeral' as const },
        },
      ],
    };
    await h.client(dave).messages.create(cached);
    await h.client(dave).messages.create(cached);
    // An upstream error (passed on after the gateway's retries) and a bad key.
    await expect(
      h
        .client(dave)
        .messages.create({ ...SMALL, messages: [{ role: 'user', content: 'x [[fake fault=529]]' }] }),
    ).rejects.toBeInstanceOf(Anthropic.APIError);
    await expect(h.client('tg_not-a-key').messages.create(SMALL)).rejects.toBeInstanceOf(
      Anthropic.AuthenticationError,
    );

    const response = await scrape(metricsToken);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    text = await response.text();
    samples = parseSamples(text);
  }, 60_000);

  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(!hasPromtool)('passes promtool check metrics', () => {
    const check = promtoolCheck(text);
    expect(check.output).toBe('');
    expect(check.status).toBe(0);
  });

  it('promtool rejects a broken exposition (control)', () => {
    if (!hasPromtool) return;
    expect(promtoolCheck(`${text}\nbroken{ 1\n`).status).not.toBe(0);
  });

  it('counts tokens and cost exactly as the ledger recorded them', async () => {
    const rows = await h.installation.db.kysely.selectFrom('usage_records').selectAll().execute();
    expect(rows.length).toBeGreaterThanOrEqual(8);
    const sum = (f: (r: (typeof rows)[number]) => number) => rows.reduce((s, r) => s + f(r), 0);
    expect(total(samples, PROM.tokens, { kind: 'input' })).toBe(sum((r) => r.input_tokens));
    expect(total(samples, PROM.tokens, { kind: 'output' })).toBe(sum((r) => r.output_tokens));
    expect(total(samples, PROM.tokens, { kind: 'cache_read' })).toBe(sum((r) => r.cache_read_tokens));
    expect(total(samples, PROM.tokens, { kind: 'cache_write_5m' })).toBe(sum((r) => r.cache_write_5m_tokens));
    expect(total(samples, PROM.tokens, { kind: 'output' })).toBeGreaterThan(0);
    const costMicro = sum((r) => r.cost_micro);
    expect(costMicro).toBeGreaterThan(0);
    expect(Math.round(total(samples, PROM.cost) * 1_000_000)).toBe(costMicro);
    // Per model too: the haiku rows' cost.
    const haiku = rows.filter((r) => r.model === 'claude-haiku-4-5').reduce((s, r) => s + r.cost_micro, 0);
    expect(Math.round(total(samples, PROM.cost, { model: 'claude-haiku-4-5' }) * 1_000_000)).toBe(haiku);
    const saved = sum((r) => Math.max(r.saved_micro, 0));
    const extra = sum((r) => Math.max(-r.saved_micro, 0));
    expect(saved).toBeGreaterThan(0);
    expect(extra).toBeGreaterThan(0);
    expect(Math.round(total(samples, PROM.saved) * 1_000_000)).toBe(saved);
    expect(Math.round(total(samples, PROM.cacheExtra) * 1_000_000)).toBe(extra);
    expect(total(samples, PROM.ledgerCommitted)).toBe(rows.length);
    expect(total(samples, `${PROM.ledgerCommit}_count`)).toBeGreaterThan(0);
    expect(samples.some((s) => s.name === PROM.ledgerQueue)).toBe(true);
  });

  it('labels only the first max_user_labels users; the rest are "other"', () => {
    const users = labelValues(samples, PROM.tokens, 'user');
    expect(users).toEqual(new Set(['alice', 'bob', 'other']));
    // carol and dave's tokens are all under "other" (positive control: they did spend).
    expect(total(samples, PROM.tokens, { user: 'other', kind: 'output' })).toBeGreaterThan(0);
    expect(text).not.toContain('carol');
    expect(text).not.toContain('"dave"');
    expect(total(samples, PROM.userLabelsOverflow)).toBeGreaterThan(0);
    // Teams keep their names.
    expect(labelValues(samples, PROM.requests, 'team')).toEqual(new Set(['platform', 'data', 'none']));
  });

  it('counts requests by status, refusals by kind and upstream errors by status', () => {
    expect(total(samples, PROM.requests, { endpoint: 'messages', status: '200', user: 'alice' })).toBe(2);
    expect(total(samples, PROM.requests, { endpoint: 'count_tokens', status: '200' })).toBe(1);
    expect(total(samples, PROM.requests, { endpoint: 'models', status: '200' })).toBe(1);
    expect(total(samples, PROM.refusals, { kind: 'rate_limit', team: 'platform' })).toBe(1);
    expect(total(samples, PROM.refusals, { kind: 'budget', team: 'data' })).toBe(1);
    expect(total(samples, PROM.refusals, { kind: 'auth' })).toBe(1);
    expect(total(samples, PROM.requests, { status: '429' })).toBe(2);
    expect(total(samples, PROM.requests, { status: '529' })).toBe(1);
    expect(
      total(samples, PROM.upstreamErrors, { endpoint: 'messages', status: '529' }),
    ).toBeGreaterThanOrEqual(1);
    expect(total(samples, `${PROM.overhead}_count`, { endpoint: 'messages' })).toBe(
      total(samples, PROM.requests, { endpoint: 'messages' }),
    );
    // Upstream time only for requests that went there; refusals have none.
    expect(total(samples, `${PROM.upstream}_count`, { endpoint: 'messages' })).toBe(
      total(samples, PROM.requests, { endpoint: 'messages' }) - 3,
    );
  });

  it('reports budget utilisation of the scopes it knows', () => {
    const data = samples.find(
      (s) => s.name === PROM.budgetUtilisation && s.labels.scope === 'team' && s.labels.name === 'data',
    );
    expect(data?.labels.period).toBe('month');
    expect(data?.value).toBeGreaterThan(0);
    expect(data?.value).toBeLessThan(1);
    expect(total(samples, PROM.budgetLimit, { scope: 'team', name: 'data', period: 'month' })).toBe(0.02);
  });

  it('requires the bearer token (and takes the right one)', async () => {
    expect((await scrape(null)).status).toBe(401);
    expect((await scrape(`${metricsToken}x`)).status).toBe(401);
    expect((await scrape(h.adminToken)).status).toBe(401);
    expect((await scrape(userKey)).status).toBe(401);
    const ok = await scrape(metricsToken);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain(PROM.requests);
  });

  it('shows no secret', () => {
    expect(findLeaks(text, secrets)).toEqual([]);
    // Control: the scan finds a secret that is there.
    expect(findLeaks(`${text}${secrets[1]}`, secrets)).not.toEqual([]);
  });
});

describe('GET /metrics without metrics.token', () => {
  it('is open', async () => {
    const h = await startHarness();
    try {
      const response = await fetch(`${h.url}/metrics`);
      expect(response.status).toBe(200);
      expect(await response.text()).toContain(`# TYPE ${PROM.requests} counter`);
    } finally {
      await h.close();
    }
  });
});
