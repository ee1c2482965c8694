// Canary passwords, session ids and invite tokens, driven through every sign-in path (invite page and
// acceptance, password and admin-token login ok and failed, a password typed into the name field,
// password change, logout, unusable links, the secrets pasted where ids and tokens belong), never
// appear — raw, base64 at every alignment, hex or URL-encoded — in the server's logs, any row of any
// table, the database file and its WAL, audit entries, API answers or error messages. The places they
// are meant to be are left out, and checked to hold them (so the search is shown to find what is there):
// the Set-Cookie of a sign-in. (The invite page posts back to its own address: it never repeats the link.)
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJson, type SessionClient, sessionFrom } from '../helpers/browser-session.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import { findLeaks } from '../helpers/secrets.js';

let h: Harness;
let offset = 0;
beforeAll(async () => {
  // A test clock: every request comes from 127.0.0.1, so each one is sent in a new throttle window
  // (the failures here are the point, and the throttle is another test's subject).
  h = await startHarness({ clock: () => Date.now() + offset });
  await h.services.users.add(h.admin, { name: 'paula', email: 'paula@example.com', role: 'member' });
});
afterAll(() => h?.close());

const canaryPassword = (label: string) => `canary-${label}-${randomBytes(15).toString('base64url')}`;

describe('canaries through sign-in', () => {
  const answers: string[] = [];
  const canaries: string[] = [];
  /** Where a secret is handed out on purpose, kept apart to check the search finds it there. */
  const handOuts: string[] = [];

  /** A request whose whole answer (status, headers, body) goes into the search, bar the Set-Cookie. */
  async function send(
    method: string,
    path: string,
    o: {
      json?: unknown;
      form?: Record<string, string>;
      headers?: Record<string, string>;
    } = {},
  ) {
    const headers: Record<string, string> = { ...o.headers };
    let body: string | undefined;
    if (o.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(o.json);
    } else if (o.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(o.form).toString();
    }
    offset += 61_000;
    const response = await fetch(`${h.url}${path}`, { method, headers, body, redirect: 'manual' });
    const json = await readJson(response);
    const setCookie = response.headers.get('set-cookie') ?? '';
    handOuts.push(setCookie);
    const kept = [...response.headers.entries()].filter(([name]) => name !== 'set-cookie');
    answers.push(JSON.stringify([response.status, kept, json]));
    return { status: response.status, json, setCookie };
  }

  /** A session from a sign-in answer; its id becomes a canary. */
  function sessionOf(answer: { setCookie: string; json: { csrf_token: string } }): SessionClient {
    const session = sessionFrom(h.url, answer.setCookie, answer.json.csrf_token);
    canaries.push(session.cookie.split('=')[1] ?? '');
    return session;
  }

  async function inviteToken(name: string): Promise<string> {
    const invite = await h.services.invites.issue(h.admin, name);
    handOuts.push(invite.url);
    const token = invite.url.split('/invite/')[1] ?? '';
    canaries.push(token);
    return token;
  }

  it('finds none anywhere it must not be', async () => {
    const first = canaryPassword('first');
    const second = canaryPassword('second');
    const wrong = canaryPassword('wrong');
    const tooLong = canaryPassword('long').padEnd(300, 'x'); // refused: over 256 characters
    canaries.push(first, second, wrong, tooLong, h.adminToken);

    // The invite link: looked up, its page, a password refused, then accepted as a form and as JSON.
    const token = await inviteToken('paula');
    expect((await send('GET', `/auth/invite/${token}`)).status).toBe(200);
    expect((await send('GET', `/invite/${token}`)).status).toBe(200);
    expect((await send('POST', `/invite/${token}`, { json: { password: 'paula@example.com' } })).status).toBe(
      400,
    );
    // A refused form shows the invite page again (the link stays usable): a hand-out like the page.
    expect((await send('POST', `/invite/${token}`, { form: { password: 'too short' } })).status).toBe(400);
    const accepted = await send('POST', `/invite/${token}`, { form: { password: first } });
    expect(accepted.status).toBe(303);
    expect(accepted.setCookie).toMatch(/^tollgate_session=tgs_/);
    canaries.push(accepted.setCookie.split(';')[0]?.split('=')[1] ?? '');
    // The used link, and a link never issued, are unusable: as a page, a lookup, and a password post.
    const unknownLink = `tgi_${randomBytes(40).toString('base64url').replace(/[-_]/g, 'x').slice(0, 49)}`;
    canaries.push(unknownLink);
    for (const link of [token, unknownLink]) {
      // The page is the dashboard shell for any link (it carries no data): the lookup it makes refuses.
      expect((await send('GET', `/invite/${link}`)).status).toBe(200);
      expect((await send('GET', `/auth/invite/${link}`)).status).toBe(404);
      expect((await send('POST', `/invite/${link}`, { json: { password: wrong } })).status).toBe(404);
      expect((await send('POST', `/invite/${link}`, { form: { password: wrong } })).status).toBe(404);
    }
    const second_link = await inviteToken('paula');
    const viaJson = sessionOf(await send('POST', `/invite/${second_link}`, { json: { password: first } }));

    // Password sign-in: ok, wrong, and the password typed into the name field; as JSON and as forms.
    const byPassword = sessionOf(
      await send('POST', '/auth/login', { json: { login: 'paula', password: first } }),
    );
    expect((await send('POST', '/auth/login', { json: { login: 'paula', password: wrong } })).status).toBe(
      401,
    );
    expect((await send('POST', '/auth/login', { json: { login: first, password: first } })).status).toBe(401);
    expect((await send('POST', '/auth/login', { form: { login: first, password: wrong } })).status).toBe(401);
    expect((await send('POST', '/auth/login', { form: { login: 'paula', password: first } })).status).toBe(
      303,
    );
    // The admin token: ok, and pasted into the password and name fields.
    const admin = sessionOf(await send('POST', '/auth/login', { json: { token: h.adminToken } }));
    expect(
      (await send('POST', '/auth/login', { json: { login: h.adminToken, password: h.adminToken } })).status,
    ).toBe(401);

    // The sessions in use, and their ids and the secrets pasted where ids and tokens belong.
    for (const s of [viaJson, byPassword]) {
      for (const path of ['/auth/session', '/api/v1/me', '/api/v1/me/settings', '/settings'])
        expect((await send('GET', path, { headers: { cookie: s.cookie } })).status).toBe(200);
    }
    expect((await send('GET', '/', { headers: { cookie: admin.cookie } })).status).toBe(200);
    expect(
      (await send('GET', '/admin/v1/audit?limit=500', { headers: { cookie: admin.cookie } })).status,
    ).toBe(200);
    const sessionId = byPassword.cookie.split('=')[1] ?? '';
    for (const secret of [sessionId, first, token]) {
      expect(
        (await send('GET', '/admin/v1/whoami', { headers: { authorization: `Bearer ${secret}` } })).status,
      ).toBe(401);
      expect((await send('GET', '/api/v1/me', { headers: { 'x-api-key': secret } })).status).toBe(401);
    }
    // Ids are echoed in not-found messages; secret-shaped ones are cut (a password has no shape to cut).
    for (const secret of [sessionId, token]) {
      expect(
        (
          await send('GET', `/admin/v1/keys/${encodeURIComponent(secret)}`, {
            headers: { cookie: admin.cookie },
          })
        ).status,
      ).toBe(404);
      expect(
        (
          await send('GET', `/admin/v1/users/${encodeURIComponent(secret)}`, {
            headers: { cookie: admin.cookie },
          })
        ).status,
      ).toBe(404);
      expect((await send('GET', `/auth/invite/${encodeURIComponent(secret)}`)).status).toBe(404);
    }

    // Password change: refused (wrong current, too short, its own name), then done; the old one fails.
    const csrf = { cookie: byPassword.cookie, 'x-csrf-token': byPassword.csrf };
    const change = (current: string, next: string) =>
      send('POST', '/auth/password', {
        json: { current_password: current, new_password: next },
        headers: csrf,
      });
    expect((await change(wrong, second)).status).toBe(401);
    expect((await change(first, tooLong)).status).toBe(400);
    expect((await change(first, 'PAULA@example.com')).status).toBe(400);
    expect((await change(first, second)).status).toBe(200);
    expect((await send('POST', '/auth/login', { json: { login: 'paula', password: first } })).status).toBe(
      401,
    );
    const after = sessionOf(
      await send('POST', '/auth/login', { json: { login: 'paula', password: second } }),
    );

    // Logout, logout everywhere, and the ended sessions presented again.
    expect(
      (await send('POST', '/auth/logout', { headers: { cookie: after.cookie, 'x-csrf-token': after.csrf } }))
        .status,
    ).toBe(200);
    expect((await send('POST', '/auth/logout-all', { headers: csrf })).status).toBe(200);
    expect(
      (
        await send('POST', '/auth/logout', {
          form: { csrf_token: admin.csrf },
          headers: { cookie: admin.cookie },
        })
      ).status,
    ).toBe(303);
    for (const s of [after, byPassword, viaJson, admin])
      expect((await send('GET', '/auth/session', { headers: { cookie: s.cookie } })).status).toBe(401);

    // Positive controls: the search finds each kind where it is on purpose.
    const handedOut = handOuts.join('\n');
    expect(findLeaks(handedOut, [sessionId])).not.toEqual([]);
    expect(findLeaks(handedOut, [token])).not.toEqual([]);
    expect(findLeaks(`{"password":"${first}"}`, [first])).not.toEqual([]);

    const db = h.installation.db.kysely;
    const tables = await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(
      db,
    );
    expect(tables.rows.map((t) => t.name)).toEqual(
      expect.arrayContaining(['sessions', 'invites', 'users', 'audit_log']),
    );
    const dump: string[] = [];
    for (const { name } of tables.rows) {
      const rows = await sql<Record<string, unknown>>`select * from ${sql.table(name)}`.execute(db);
      for (const row of rows.rows)
        dump.push(
          `${name}: ${Object.values(row)
            .map((v) => (Buffer.isBuffer(v) ? v.toString('latin1') : String(v)))
            .join(' | ')}`,
        );
    }
    expect(dump.some((line) => line.startsWith('sessions: '))).toBe(true);
    const audit = await db.selectFrom('audit_log').selectAll().execute();
    expect(audit.some((row) => row.action === 'user.password_change')).toBe(true);
    const dbFile = join(h.config.home, 'tollgate.db');
    const haystacks: Array<[string, string | Buffer]> = [
      ['API answers and error messages', answers.join('\n')],
      ['logs', h.logs()],
      ['every row of every table', dump.join('\n')],
      ['audit entries', JSON.stringify(audit)],
      ['database file', await readFile(dbFile)],
      ['WAL', await readFile(`${dbFile}-wal`).catch(() => Buffer.alloc(0))],
    ];
    expect(canaries.length).toBeGreaterThanOrEqual(10);
    for (const [where, haystack] of haystacks) expect(findLeaks(haystack, canaries), where).toEqual([]);
    expect(answers.length).toBeGreaterThan(50);
  }, 60_000);
});
