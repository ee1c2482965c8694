// Admin tokens, usage and audit over the admin API and the CLI: personal tokens act (and are audited)
// as their holder and stop at once when revoked or when the holder loses standing; usage and audit rows
// over HTTP equal the local CLI's JSON; audit paging walks the whole log; no token is ever stored in the
// audit log or shown by a list; the CLI prints and exits the same with --server as it does on the local
// database. Rotation and a broken chain: rotate-and-broken-chain.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUPS } from '../../src/usage/usage.repo.js';
import { runCli } from '../helpers/cli.js';
import type { ApiJson, Harness } from '../helpers/gateway.js';
import { findLeaks } from '../helpers/secrets.js';
import { issue, local, remote, startApiHarness, whoami } from './cli-modes.js';

const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 40,
  messages: [{ role: 'user' as const, content: 'usage [[fake output_tokens=7]]' }],
};

/** Every entry of the audit log, walked through the API with pages of `limit`. */
async function walkAudit(h: Harness, limit: number, token = h.adminToken): Promise<ApiJson[]> {
  const entries: ApiJson[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 10_000; i++) {
    const q: string = `limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const r = await h.api('GET', `/admin/v1/audit?${q}`, { token });
    expect(r.status).toBe(200);
    expect(r.json.items.length).toBeLessThanOrEqual(limit);
    entries.push(...r.json.items);
    cursor = r.json.next_cursor;
    if (cursor === null) return entries;
  }
  throw new Error('the audit list did not end');
}

describe('admin tokens, usage and audit over the API', () => {
  let h: Harness;
  const tokens: string[] = [];

  beforeAll(async () => {
    h = await startApiHarness();
    tokens.push(h.adminToken);
    await h.orgCredential();
    await h.services.teams.add(h.admin, { name: 'core' });
    await h.services.users.add(h.admin, { name: 'ada', role: 'admin' });
    await h.services.users.add(h.admin, { name: 'mel', role: 'member', team: 'core' });
    // Some usage for two users (one in a team), so every grouping has rows.
    const alice = await h.key({ user: 'alice' });
    const mel = await h.key({ user: 'mel' });
    for (const key of [alice, alice, mel]) await h.client(key).messages.create(PARAMS);
    await h.gateway.deps.ledger.drain();
  });
  afterAll(() => h.close());

  it('a personal token acts as its holder: whoami says admin:NAME and its actions are audited so', async () => {
    const issued = await issue(h, 'ada', 'ci');
    tokens.push(issued.token);
    expect(issued).toMatchObject({ user: 'ada', name: 'ci', status: 'active', revoked_at: null });
    expect(issued.id).toMatch(/^atk_/);
    expect(issued.token).toMatch(/^tga_/);
    expect(issued.hint).toBe(`tga_…${issued.token.slice(-4)}`);

    const me = await whoami(h, issued.token);
    expect(me.status).toBe(200);
    expect(me.json).toMatchObject({ actor: 'admin:ada', kind: 'admin' });
    // Control: the installation token is someone else.
    expect((await whoami(h, h.adminToken)).json).toMatchObject({
      actor: 'admin-token',
      kind: 'installation',
    });

    const team = await h.api('POST', '/admin/v1/teams', { token: issued.token, body: { name: 'by-ada' } });
    expect(team.status).toBe(201);
    const entries = await h.api('GET', `/admin/v1/audit?action=team.add&target_id=${team.json.id}`);
    expect(entries.json.items).toHaveLength(1);
    expect(entries.json.items[0]).toMatchObject({ actor: 'admin:ada', action: 'team.add' });

    // The issue itself is audited (by the installation token), with the hint and never the token.
    const issuedEntry = await h.api('GET', `/admin/v1/audit?action=admin_token.issue&target_id=${issued.id}`);
    expect(issuedEntry.json.items[0]).toMatchObject({
      actor: 'admin-token',
      target_type: 'admin_token',
      details: { hint: issued.hint, name: 'ci' },
    });
  });

  it('a revoked token is refused at once, while the holder’s other token still works', async () => {
    const doomed = await issue(h, 'ada', 'doomed');
    const kept = await issue(h, 'ada', 'kept');
    tokens.push(doomed.token, kept.token);
    expect((await whoami(h, doomed.token)).status).toBe(200);

    const revoked = await h.api('DELETE', `/admin/v1/admin-tokens/${doomed.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.json).toMatchObject({ id: doomed.id, status: 'revoked' });
    expect(revoked.json.revoked_at).not.toBeNull();

    const refused = await whoami(h, doomed.token);
    expect(refused.status).toBe(401);
    expect(refused.json.error.code).toBe('unauthenticated');
    expect((await whoami(h, kept.token)).status).toBe(200);

    // Revoking twice is a conflict; an unknown id is not found.
    expect((await h.api('DELETE', `/admin/v1/admin-tokens/${doomed.id}`)).status).toBe(409);
    expect((await h.api('DELETE', '/admin/v1/admin-tokens/atk_nope')).status).toBe(404);
  });

  it('tokens of a user later removed or demoted are refused (401); the list marks them inactive', async () => {
    await h.services.users.add(h.admin, { name: 'gone', role: 'admin' });
    await h.services.users.add(h.admin, { name: 'demoted', role: 'admin' });
    await h.services.users.add(h.admin, { name: 'stays', role: 'admin' });
    const gone = await issue(h, 'gone');
    const demoted = await issue(h, 'demoted');
    const stays = await issue(h, 'stays');
    tokens.push(gone.token, demoted.token, stays.token);
    for (const t of [gone, demoted, stays]) expect((await whoami(h, t.token)).status).toBe(200);

    await h.services.users.remove(h.admin, 'gone');
    // No `user update` in this branch yet: the demotion is what it will write.
    await h.installation.db.kysely
      .updateTable('users')
      .set({ role: 'member' })
      .where('name', '=', 'demoted')
      .execute();

    expect((await whoami(h, gone.token)).status).toBe(401);
    expect((await whoami(h, demoted.token)).status).toBe(401);
    expect((await whoami(h, stays.token)).status).toBe(200);

    const list = await h.api('GET', '/admin/v1/admin-tokens');
    const status = new Map(list.json.items.map((t: ApiJson) => [t.id, t.status]));
    // Removal revokes them in the same transaction; a demotion made behind the service's back is
    // still caught by the principal's standing check (inactive).
    expect(status.get(gone.id)).toBe('revoked');
    expect(status.get(demoted.id)).toBe('inactive');
    expect(status.get(stays.id)).toBe('active');
  });

  it('issuing for a member, a removed or unknown user, or with an unknown field is refused', async () => {
    const member = await h.api('POST', '/admin/v1/admin-tokens', { body: { user: 'mel' } });
    expect(member.status).toBe(400);
    expect(member.json.error.message).toMatch(/mel is a member, not an admin/);
    expect((await h.api('POST', '/admin/v1/admin-tokens', { body: { user: 'gone' } })).status).toBe(404);
    expect((await h.api('POST', '/admin/v1/admin-tokens', { body: { user: 'nobody' } })).status).toBe(404);
    const smuggled = await h.api('POST', '/admin/v1/admin-tokens', { body: { user: 'ada', role: 'x' } });
    expect(smuggled.status).toBe(400);
    expect(smuggled.json.error.fields).toEqual(['role']);
    // Control: the same request for an admin succeeds.
    const ok = await h.api('POST', '/admin/v1/admin-tokens', { body: { user: 'ada' } });
    expect(ok.status).toBe(201);
    tokens.push(ok.json.token);

    // The CLI refuses the same way, locally and remotely.
    const cliLocal = await local(h, ['admin-token', 'issue', '--user', 'mel']);
    const cliRemote = await remote(h, ['admin-token', 'issue', '--user', 'mel']);
    expect(cliLocal.code).toBe(2);
    expect(cliRemote).toEqual(cliLocal);
  });

  it('the list filters by user and pages; it shows hints, never tokens', async () => {
    const ada = await h.api('GET', '/admin/v1/admin-tokens?user=ada');
    expect(ada.json.items.length).toBeGreaterThanOrEqual(4);
    expect(ada.json.items.every((t: ApiJson) => t.user === 'ada' && t.token === undefined)).toBe(true);
    const all = (await h.api('GET', '/admin/v1/admin-tokens')).json.items as ApiJson[];
    const paged: ApiJson[] = [];
    let cursor: string | null = null;
    do {
      const r: { json: ApiJson } = await h.api(
        'GET',
        `/admin/v1/admin-tokens?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      paged.push(...r.json.items);
      cursor = r.json.next_cursor;
    } while (cursor);
    expect(paged.map((t) => t.id)).toEqual(all.map((t) => t.id));
    expect((await h.api('GET', '/admin/v1/admin-tokens?user=nobody')).status).toBe(404);
    // The CLI's list equals the API's, through both paths.
    const viaCli = await local(h, ['admin-token', 'list', '--json']);
    expect(JSON.parse(viaCli.stdout)).toEqual(all);
    expect(await remote(h, ['admin-token', 'list', '--json'])).toEqual(viaCli);
  });

  it('usage rows over the API equal `usage --json` on the local database, for every grouping', async () => {
    for (const by of GROUPS) {
      const api = await h.api('GET', `/admin/v1/usage?by=${by}`);
      expect(api.status).toBe(200);
      expect(api.json.next_cursor).toBeNull();
      const cli = await local(h, ['usage', '--by', by, '--json']);
      expect(cli.code).toBe(0);
      expect(api.json.items).toEqual(JSON.parse(cli.stdout));
      expect(api.json.items.reduce((n: number, r: ApiJson) => n + r.requests, 0)).toBe(3);
    }
    const byUser = (await h.api('GET', '/admin/v1/usage?by=user')).json.items as ApiJson[];
    // Rows are ordered by the group's stored value (a user id here), so compare them sorted by name.
    expect(byUser.map((r) => [r.user, r.requests]).sort()).toEqual([
      ['alice', 2],
      ['mel', 1],
    ]);
    expect(byUser.every((r) => Object.keys(r)[0] === 'user')).toBe(true);
    // Filters: a team, a user; a window in the future is empty (control for the default window).
    const core = await h.api('GET', '/admin/v1/usage?by=user&team=core');
    expect(core.json.items.map((r: ApiJson) => r.user)).toEqual(['mel']);
    const alice = await h.api('GET', '/admin/v1/usage?user=alice');
    expect(alice.json.items.reduce((n: number, r: ApiJson) => n + r.requests, 0)).toBe(2);
    expect((await h.api('GET', '/admin/v1/usage?since=2999-01-01')).json.items).toEqual([]);
    expect((await h.api('GET', '/admin/v1/usage?since=30d&until=2999-01-01')).json.items).toHaveLength(1);
    // Refusals name what is wrong.
    const badBy = await h.api('GET', '/admin/v1/usage?by=planet');
    expect(badBy.status).toBe(400);
    expect(badBy.json.error.fields).toEqual(['by']);
    const badDate = await h.api('GET', '/admin/v1/usage?since=yesterday');
    expect(badDate.status).toBe(400);
    expect(badDate.json.error.message).toMatch(/not a date/);
    expect((await h.api('GET', '/admin/v1/usage?user=nobody')).status).toBe(404);
    expect((await h.api('GET', '/admin/v1/usage?group=model')).json.error.fields).toEqual(['group']);
  });

  it('audit paging with limit=2 walks the whole log: no duplicates, no gaps, same rows as the CLI', async () => {
    const walked = await walkAudit(h, 2);
    const seqs = walked.map((e) => e.seq);
    expect(seqs.length).toBeGreaterThan(10);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    const cli = await local(h, ['audit', 'list', '--limit', '1000', '--json']);
    expect(JSON.parse(cli.stdout)).toEqual(walked);
    // The default page and one big page agree with the small pages.
    expect(await walkAudit(h, 500)).toEqual(walked);
    // --limit counts entries across pages.
    expect(JSON.parse((await local(h, ['audit', 'list', '--limit', '3', '--json'])).stdout)).toEqual(
      walked.slice(0, 3),
    );
    // Filters are exact and combine with paging.
    const issues = await h.api('GET', '/admin/v1/audit?action=admin_token.issue&limit=1');
    expect(issues.json.items).toHaveLength(1);
    expect(issues.json.next_cursor).not.toBeNull();
    const byAda = await h.api('GET', '/admin/v1/audit?actor=admin:ada');
    expect(byAda.json.items.map((e: ApiJson) => e.action)).toEqual(['team.add']);
    expect((await h.api('GET', '/admin/v1/audit?since=2999-01-01')).json.items).toEqual([]);
    expect((await h.api('GET', '/admin/v1/audit?until=2000-01-01')).json.items).toEqual([]);
    // A forged cursor is refused, not trusted.
    const forged = Buffer.from(JSON.stringify(['x'])).toString('base64url');
    expect((await h.api('GET', `/admin/v1/audit?cursor=${forged}`)).status).toBe(400);
    expect((await h.api('GET', '/admin/v1/audit?cursor=%%%')).status).toBe(400);
  });

  it('the CLI with --server prints and exits exactly as it does locally', async () => {
    for (const argv of [
      ['usage', '--json'],
      ['usage', '--by', 'credential', '--since', '7d', '--json'],
      ['audit', 'list', '--json'],
      ['audit', 'list', '--limit', '5', '--json'],
      ['audit', 'list', '--action', 'admin_token.issue', '--since', '1d', '--until', '2999-01-01'],
      ['audit', 'verify'],
      ['audit', 'verify', '--json'],
    ]) {
      const here = await local(h, argv);
      const there = await remote(h, argv);
      expect(here.code, `${argv.join(' ')}: ${here.stderr}`).toBe(0);
      expect(there, argv.join(' ')).toEqual(here);
    }
    const filtered = JSON.parse((await local(h, ['audit', 'list', '--actor', 'admin:ada', '--json'])).stdout);
    expect(filtered.map((e: ApiJson) => e.action)).toEqual(['team.add']);
    // Remote errors carry the same message and status as local ones.
    const here = await local(h, ['usage', '--user', 'nobody']);
    expect(here.code).toBe(1);
    expect(await remote(h, ['usage', '--user', 'nobody'])).toEqual(here);
    // A personal token works remotely too; without a token the CLI refuses before calling.
    const ada = (await h.api('POST', '/admin/v1/admin-tokens', { body: { user: 'ada' } })).json;
    tokens.push(ada.token);
    expect((await remote(h, ['audit', 'verify'], ada.token)).code).toBe(0);
    const none = await runCli(['--server', h.url, 'audit', 'verify'], {});
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/TOLLGATE_ADMIN_TOKEN/);
  });

  it('local-only commands refuse --server, naming themselves', async () => {
    for (const sub of [
      ['admin-token', 'rotate'],
      ['audit', 'witness'],
    ]) {
      const r = await remote(h, sub);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`\`tollgate ${sub.join(' ')}\` works on the local database only`);
    }
    // Control: the installation token still works (nothing was rotated).
    expect((await whoami(h, h.adminToken)).status).toBe(200);
  });

  it('the OpenAPI document lists these operations, and none rotates the installation token', async () => {
    const doc = (await h.api('GET', '/admin/v1/openapi.json', { token: '' })).json;
    const ids = Object.values(doc.paths as Record<string, Record<string, ApiJson>>).flatMap((p) =>
      Object.values(p).map((o) => o.operationId),
    );
    for (const id of ['adminTokens.list', 'adminTokens.issue', 'adminTokens.revoke', 'usage.query'])
      expect(ids).toContain(id);
    expect(ids).toEqual(expect.arrayContaining(['audit.list', 'audit.verify']));
    expect(ids.filter((id: string) => /rotate/i.test(id) && /token/i.test(id))).toEqual([]);
    const by = doc.paths['/admin/v1/usage'].get.parameters.find((p: ApiJson) => p.name === 'by');
    expect(by).toMatchObject({ in: 'query', required: false });
  });

  it('no token appears in the audit table, any list answer, or the server log', async () => {
    expect(tokens.length).toBeGreaterThan(8);
    const auditRows = await h.installation.db.kysely.selectFrom('audit_log').selectAll().execute();
    const tokenRows = await h.installation.db.kysely.selectFrom('admin_tokens').selectAll().execute();
    const lists = await Promise.all(
      [
        '/admin/v1/admin-tokens',
        '/admin/v1/admin-tokens?user=ada',
        '/admin/v1/audit?limit=500',
        '/admin/v1/usage?by=key',
        '/admin/v1/teams',
      ].map((p) => h.api('GET', p)),
    );
    const cliLists = await Promise.all([
      local(h, ['admin-token', 'list']),
      local(h, ['admin-token', 'list', '--json']),
      local(h, ['audit', 'list', '--limit', '1000']),
    ]);
    const haystack = JSON.stringify([auditRows, tokenRows, lists.map((l) => l.json), cliLists]) + h.logs();
    expect(findLeaks(haystack, tokens)).toEqual([]);
    // Control: the same search finds a token where one is.
    expect(findLeaks(`x${JSON.stringify({ t: tokens[1] })}`, tokens)).not.toEqual([]);
  });
});
