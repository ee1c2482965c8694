// The authorization matrix: every /admin/v1 and /api/v1/me operation, tried as every kind of caller —
// credentials sent as bearer tokens, and dashboard sessions (cookie and CSRF token) live and ended.
// Each refusal stands beside a positive control on the same route that succeeds, so a refusal cannot
// come from a broken route. The matrix is printed (and summarised in the README).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_OPS } from '../../src/api/admin/index.js';
import { ME_OPS } from '../../src/api/me/index.js';
import type { Operation } from '../../src/api/operation.js';
import type { SessionClient } from '../helpers/browser-session.js';
import { type ApiJson, type Harness, startHarness } from '../helpers/gateway.js';
import {
  ADMIN_FIXTURES,
  type Call,
  ME_FIXTURES,
  type Person,
  placeholderCall,
  setUpWorld,
  type World,
} from './authz-fixtures.js';
import { type MatrixSessions, openSessions } from './authz-sessions.js';

/** Each caller with its short column label. */
const COLUMNS = {
  anonymous: 'anon',
  'member A (own)': 'A own',
  "member A (B's)": "A B's",
  'inference key': 'infer',
  'self-service key': 'self',
  'revoked admin token': 'revoked',
  'personal admin token': 'personal',
  'installation token': 'install',
  'member session': 'M ses',
  "member session (B's)": "M ses B's",
  'admin session': 'A ses',
  "admin session (B's)": "A ses B's",
  'installation session': 'I ses',
  'expired session': 'expired',
  'idle-expired session': 'idle',
  'logged-out session': 'out',
} as const;
type Caller = keyof typeof COLUMNS;
const CALLERS = Object.keys(COLUMNS) as Caller[];

const ENDED: ReadonlySet<Caller> = new Set(['expired session', 'idle-expired session', 'logged-out session']);
const CROSS_USER: ReadonlySet<Caller> = new Set([
  "member A (B's)",
  "member session (B's)",
  "admin session (B's)",
]);
const PERSON_SESSIONS: ReadonlySet<Caller> = new Set([
  'member session',
  "member session (B's)",
  'admin session',
  "admin session (B's)",
]);

/** What each caller must get: a status, `ok` (the operation's success status) or `n/a`. */
function expected(op: Operation, caller: Caller): number | 'ok' | 'n/a' {
  const admin = op.path.startsWith('/admin/');
  if (caller === 'anonymous' || ENDED.has(caller)) return 401;
  if (admin) {
    if (caller === "admin session (B's)") return 'n/a'; // an admin may act on anyone's objects here
    if (caller === 'member session' || caller === "member session (B's)") return 403;
    const admins: readonly Caller[] = [
      'personal admin token',
      'installation token',
      'admin session',
      'installation session',
    ];
    return admins.includes(caller) ? 'ok' : 401;
  }
  // Self-service routes: a user's own self-service key, or a person's session (an admin is a person too).
  if (caller === 'inference key' || caller === 'installation session') return 403;
  if (
    caller === 'revoked admin token' ||
    caller === 'personal admin token' ||
    caller === 'installation token'
  )
    return 401;
  // Issuing a key needs a dashboard session: a leaked key cannot mint more keys.
  if (op.id === 'me.keys.issue' && !PERSON_SESSIONS.has(caller)) return 403;
  if (CROSS_USER.has(caller)) {
    const fixture = ME_FIXTURES[op.id];
    return fixture?.other ? (fixture.otherStatus ?? 404) : 'n/a';
  }
  return 'ok';
}

/** The success status a positive control must get (issuing a key answers 201, Created). */
function okStatus(op: Operation): number {
  return op.id === 'me.keys.issue' ? 201 : op.status;
}

function expand(op: Operation, call: Call): string {
  const path = op.path.replace(/\{([A-Za-z_]+)\}/g, (_m, name: string) =>
    encodeURIComponent(call.params?.[name] ?? 'missing'),
  );
  const query = new URLSearchParams(call.query ?? {}).toString();
  return query ? `${path}?${query}` : path;
}

describe('authorization matrix', () => {
  let h: Harness;
  let w: World;
  let sessions: MatrixSessions;
  const cells = new Map<string, string>();

  beforeAll(async () => {
    h = await startHarness();
    w = await setUpWorld(h);
    sessions = await openSessions(w);
  }, 60_000);

  afterAll(async () => {
    await h?.close();
  });

  it('every operation has a fixture', () => {
    expect(ADMIN_OPS.filter((o) => !ADMIN_FIXTURES[o.id]).map((o) => o.id)).toEqual([]);
    expect(ME_OPS.filter((o) => !ME_FIXTURES[o.id]).map((o) => o.id)).toEqual([]);
  });

  it('refuses every caller it must, beside positive controls that succeed', async () => {
    const unexpected: string[] = [];
    let refusals = 0;
    let controls = 0;
    for (const op of [...ADMIN_OPS, ...ME_OPS]) {
      for (const caller of CALLERS) {
        const want = expected(op, caller);
        if (want === 'n/a') {
          cells.set(`${op.id}|${caller}`, 'n/a');
          continue;
        }
        // Refusals come before the input is read, so only controls and cross-user calls need real objects.
        const call = want === 'ok' || CROSS_USER.has(caller) ? await callFor(op, caller) : placeholderCall();
        const answer = await send(
          caller,
          op.method,
          expand(op, call),
          op.body ? (call.body ?? {}) : undefined,
        );
        cells.set(`${op.id}|${caller}`, String(answer.status));
        const ok = answer.status >= 200 && answer.status < 300;
        if (want === 'ok') {
          controls++;
          if (answer.status !== okStatus(op))
            unexpected.push(
              `${op.method} ${op.path} as ${caller}: ${answer.status} ${JSON.stringify(answer.json).slice(0, 200)}`,
            );
        } else {
          refusals++;
          if (ok || answer.status !== want)
            unexpected.push(`${op.method} ${op.path} as ${caller}: wanted ${want}, got ${answer.status}`);
          // One error shape for every refusal.
          if (!ok) expect(answer.json?.error?.code, `${op.id} ${caller}`).toEqual(expect.any(String));
        }
      }
    }
    printMatrix();
    console.log(
      `authorization matrix: ${refusals} refusals, ${controls} positive controls, ${unexpected.length} unexpected`,
    );
    expect(unexpected).toEqual([]);
    expect(controls).toBeGreaterThan(0);
  }, 240_000);

  it('the one route outside the operations, the OpenAPI document, is public and carries no data', async () => {
    // Positive control and refusal-free by design: every caller gets the same document.
    const bodies = new Set<string>();
    for (const caller of CALLERS) {
      const answer = await send(caller, 'GET', '/admin/v1/openapi.json');
      expect(answer.status, caller).toBe(200);
      bodies.add(JSON.stringify(answer.json));
    }
    expect(bodies.size).toBe(1);
    const [doc] = [...bodies];
    // No object of this installation appears in it (ids of users, keys, the org).
    for (const id of [w.a.id, w.a.selfServiceKeyId, h.installation.orgId]) expect(doc).not.toContain(id);
  });

  async function callFor(op: Operation, caller: Caller): Promise<Call> {
    const admin = ADMIN_FIXTURES[op.id];
    if (admin) return admin(w);
    const me = ME_FIXTURES[op.id];
    if (!me) throw new Error(`no fixture for ${op.id}`);
    if (CROSS_USER.has(caller) && me.other) return me.other(w);
    return me.own(w, personOf(caller));
  }

  /** Whom a self-service call acts as: the admin's own session acts as the admin, every other as A. */
  function personOf(caller: Caller): Person {
    return caller === 'admin session' ? sessions.adminPerson : w.a;
  }

  /** Sends a call as the caller: a bearer token, or a session's cookie with its CSRF token. */
  async function send(
    caller: Caller,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: ApiJson }> {
    const session = sessionFor(caller);
    if (session) return session.call(method, path, body === undefined ? {} : { body });
    return h.api(method, path, { token: tokenFor(caller), ...(body === undefined ? {} : { body }) });
  }

  function sessionFor(caller: Caller): SessionClient | null {
    switch (caller) {
      case 'member session':
      case "member session (B's)":
        return sessions.member;
      case 'admin session':
      case "admin session (B's)":
        return sessions.admin;
      case 'installation session':
        return sessions.installation;
      case 'expired session':
        return sessions.expired;
      case 'idle-expired session':
        return sessions.idle;
      case 'logged-out session':
        return sessions.loggedOut;
      default:
        return null;
    }
  }

  function tokenFor(caller: Caller): string {
    switch (caller) {
      case 'member A (own)':
      case "member A (B's)":
      case 'self-service key':
        return w.a.selfServiceKey;
      case 'inference key':
        return w.a.inferenceKey;
      case 'revoked admin token':
        return w.revokedAdminToken;
      case 'personal admin token':
        return w.personalAdminToken;
      case 'installation token':
        return h.adminToken;
      default:
        return ''; // anonymous (sessions never get here)
    }
  }

  function printMatrix(): void {
    const ops = [...ADMIN_OPS, ...ME_OPS];
    const width = Math.max(...ops.map((o) => `${o.method} ${o.path}`.length));
    const cell = (c: Caller, text: string) => text.padEnd(Math.max(COLUMNS[c].length, 8));
    const lines = [`${'route'.padEnd(width)} | ${CALLERS.map((c) => cell(c, COLUMNS[c])).join(' | ')}`];
    for (const op of ops)
      lines.push(
        `${`${op.method} ${op.path}`.padEnd(width)} | ${CALLERS.map((c) => cell(c, cells.get(`${op.id}|${c}`) ?? '')).join(' | ')}`,
      );
    console.log(lines.join('\n'));
  }
});
