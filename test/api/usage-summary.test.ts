// `tollgate usage --summary` and `GET /admin/v1/usage/summary`: this UTC month per user and per model,
// savings and remaining budgets — the same JSON over HTTP, from the local CLI and with --server; its
// figures agree with `tollgate usage --json` (one source: the rollups) and with `budget list`; the
// table form names users, models and budgets; --summary refuses the options it does not take, while
// `usage --json` without it keeps printing its array of rows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiJson, Harness } from '../helpers/gateway.js';
import { local, remote, startApiHarness } from './cli-modes.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 40,
  messages: [{ role: 'user' as const, content: 'summary [[fake output_tokens=9]]' }],
};

describe('usage --summary', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startApiHarness();
    await h.orgCredential();
    await h.services.teams.add(h.admin, { name: 'core' });
    await h.services.users.add(h.admin, { name: 'mel', role: 'member', team: 'core' });
    const alice = await h.key({ user: 'alice' });
    const mel = await h.key({ user: 'mel' });
    for (const key of [alice, alice, mel]) await h.client(key).messages.create(PARAMS);
    await h.client(mel).messages.create({ ...PARAMS, model: 'claude-sonnet-4-6' });
    await h.gateway.deps.ledger.drain();
    for (const body of [
      { scope: 'org', period: 'month', limit_usd: 100 },
      { scope: 'team', target: 'core', period: 'month', limit_usd: 20 },
      { scope: 'user', target: 'mel', period: 'day', limit_usd: 2 },
    ]) {
      const r = await h.api('PUT', '/admin/v1/budgets', { body });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    }
  });
  afterAll(() => h.close());

  it('answers one JSON object, the same over HTTP, from the local CLI and with --server', async () => {
    const api = await h.api('GET', '/admin/v1/usage/summary');
    expect(api.status).toBe(200);
    const s = api.json;
    const monthStart = new Date();
    expect(s.month).toBe(monthStart.toISOString().slice(0, 7));
    expect(s.since).toBe(`${s.month}-01T00:00:00.000Z`);
    expect(s.totals.requests).toBe(4);
    expect(s.by_user.map((u: ApiJson) => [u.user, u.requests]).sort()).toEqual([
      ['alice', 2],
      ['mel', 2],
    ]);
    expect(s.by_model.map((m: ApiJson) => [m.model, m.requests]).sort()).toEqual([
      ['claude-haiku-4-5', 3],
      ['claude-sonnet-4-6', 1],
    ]);
    const here = await local(h, ['usage', '--summary', '--json']);
    expect(here.code, here.stderr).toBe(0);
    const there = await remote(h, ['usage', '--summary', '--json']);
    expect(there.code, there.stderr).toBe(0);
    // `until` is each call's own "now"; everything else is the same.
    const strip = (x: ApiJson) => ({
      ...x,
      until: null,
      budgets: x.budgets.map((b: ApiJson) => b.target_id),
    });
    expect(strip(JSON.parse(here.stdout))).toEqual(strip(s));
    expect(strip(JSON.parse(there.stdout))).toEqual(strip(s));
  });

  it('agrees with `usage --json` per user and per model, and with `budget list`', async () => {
    const s = (await h.api('GET', '/admin/v1/usage/summary')).json;
    const sums = (r: ApiJson) => {
      const { user: _u, user_id: _i, model: _m, saved_usd: _s, ...rest } = r;
      return rest;
    };
    const byUser = JSON.parse((await local(h, ['usage', '--by', 'user', '--json'])).stdout) as ApiJson[];
    const byName = (a: ApiJson, b: ApiJson) =>
      String(a.user ?? a.model).localeCompare(String(b.user ?? b.model));
    expect([...s.by_user].sort(byName).map(sums)).toEqual([...byUser].sort(byName).map(sums));
    const byModel = JSON.parse((await local(h, ['usage', '--by', 'model', '--json'])).stdout) as ApiJson[];
    expect([...s.by_model].sort(byName).map(sums)).toEqual([...byModel].sort(byName).map(sums));
    const total = byModel.reduce((n, r) => n + r.cost_micro_usd, 0);
    expect(s.totals.cost_micro_usd).toBe(total);
    expect(total).toBeGreaterThan(0);

    // Budgets: org, team, user (the org's month, core's month, mel's day), as `budget list` has them.
    expect(s.budgets.map((b: ApiJson) => [b.scope, b.target, b.period])).toEqual([
      ['org', null, 'month'],
      ['team', 'core', 'month'],
      ['user', 'mel', 'day'],
    ]);
    const listed = (await h.api('GET', '/admin/v1/budgets')).json.items as ApiJson[];
    for (const b of s.budgets) {
      const same = listed.find(
        (l) => l.scope === b.scope && l.target_id === b.target_id && l.period === b.period,
      );
      expect(same, JSON.stringify(b)).toBeDefined();
      expect([b.limit_usd, b.spent_usd, b.remaining_usd]).toEqual([
        same?.limit_usd,
        same?.spent_usd,
        same?.remaining_usd,
      ]);
    }
    const team = s.budgets.find((b: ApiJson) => b.scope === 'team');
    const melCost = s.by_user.find((u: ApiJson) => u.user === 'mel').cost_micro_usd;
    expect(team.spent_micro_usd).toBe(melCost);
    expect(team.remaining_micro_usd).toBe(20_000_000 - melCost - team.reserved_micro_usd);
  });

  it('prints tables by default; refuses the options it does not take; `usage --json` stays an array', async () => {
    const text = await local(h, ['usage', '--summary']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/Month to date: \d{4}-\d{2} \(UTC month/);
    expect(text.stdout).toMatch(/By user:[\s\S]*alice[\s\S]*By model:[\s\S]*claude-haiku-4-5[\s\S]*Budgets/);
    expect(text.stdout).toContain('core');
    for (const extra of [
      ['--by', 'user'],
      ['--since', '7d'],
      ['--user', 'mel'],
    ]) {
      const refused = await local(h, ['usage', '--summary', ...extra]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`takes no ${extra[0]}`);
      // Control: the same option without --summary works.
      expect((await local(h, ['usage', ...extra, '--json'])).code).toBe(0);
    }
    const rows = JSON.parse((await local(h, ['usage', '--json'])).stdout);
    expect(Array.isArray(rows)).toBe(true);
    expect(rows[0]).toHaveProperty('model');
  });
});
