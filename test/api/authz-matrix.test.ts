// The authorization matrix: every /admin/v1 and /api/v1/me operation, tried as every kind of caller.
// Each refusal stands beside a positive control on the same route that succeeds, so a refusal cannot
// come from a broken route. The matrix is printed (and summarised in the README).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_OPS } from '../../src/api/admin/index.js';
import { ME_OPS } from '../../src/api/me/index.js';
import type { Operation } from '../../src/api/operation.js';
import { type Harness, startHarness } from '../helpers/gateway.js';
import {
  ADMIN_FIXTURES,
  type Call,
  ME_FIXTURES,
  placeholderCall,
  setUpWorld,
  type World,
} from './authz-fixtures.js';

const CALLERS = [
  'anonymous',
  'member A (own)',
  "member A (B's)",
  'inference key',
  'self-service key',
  'revoked admin token',
  'personal admin token',
  'installation token',
] as const;
type Caller = (typeof CALLERS)[number];

/** What each caller must get: a status, `ok` (the operation's success status) or `n/a`. */
function expected(op: Operation, caller: Caller): number | 'ok' | 'n/a' {
  const admin = op.path.startsWith('/admin/');
  if (caller === 'anonymous') return 401;
  if (admin) return caller === 'personal admin token' || caller === 'installation token' ? 'ok' : 401;
  // Self-service routes: only a user's own self-service key is a user's credential here.
  if (caller === 'inference key') return 403;
  if (
    caller === 'revoked admin token' ||
    caller === 'personal admin token' ||
    caller === 'installation token'
  )
    return 401;
  if (op.id === 'me.keys.issue') return 403; // issuing is for dashboard sessions only (next issue)
  if (caller === "member A (B's)") {
    const fixture = ME_FIXTURES[op.id];
    return fixture?.other ? (fixture.otherStatus ?? 404) : 'n/a';
  }
  return 'ok';
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
  const cells = new Map<string, string>();

  beforeAll(async () => {
    h = await startHarness();
    w = await setUpWorld(h);
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
        const call =
          want === 'ok' || caller === "member A (B's)" ? await callFor(op, caller) : placeholderCall();
        const token = tokenFor(caller);
        const answer = await h.api(op.method, expand(op, call), {
          token,
          ...(op.body ? { body: call.body ?? {} } : {}),
        });
        cells.set(`${op.id}|${caller}`, String(answer.status));
        const ok = answer.status >= 200 && answer.status < 300;
        if (want === 'ok') {
          controls++;
          if (answer.status !== op.status)
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
      const answer = await h.api('GET', '/admin/v1/openapi.json', { token: tokenFor(caller) });
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
    if (caller === "member A (B's)" && me.other) return me.other(w);
    return me.own(w);
  }

  function tokenFor(caller: Caller): string {
    switch (caller) {
      case 'anonymous':
        return '';
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
    }
  }

  function printMatrix(): void {
    const ops = [...ADMIN_OPS, ...ME_OPS];
    const width = Math.max(...ops.map((o) => `${o.method} ${o.path}`.length));
    const short = ['anon', 'A own', "A B's", 'infer', 'self', 'revoked', 'personal', 'install'];
    const lines = [`${'route'.padEnd(width)} | ${short.map((s) => s.padEnd(8)).join(' | ')}`];
    for (const op of ops)
      lines.push(
        `${`${op.method} ${op.path}`.padEnd(width)} | ${CALLERS.map((c) => (cells.get(`${op.id}|${c}`) ?? '').padEnd(8)).join(' | ')}`,
      );
    console.log(lines.join('\n'));
  }
});
