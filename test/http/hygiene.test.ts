// HTTP hygiene on every surface outside the gateway: security headers on a representative route of each
// group (HSTS only over https a trusted proxy vouches for), CORS off unless origins are configured and
// then only for those, body limits per route group (413 just over, answered normally just under), and a
// client dribbling its headers cut off by the server. The gateway's /v1/* answers stay as they were.
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_BODY_LIMIT } from '../../src/http/limits.js';
import { DASHBOARD_CSP, FORM_PAGE_CSP, HSTS, NO_CONTENT_CSP } from '../../src/http/security-headers.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with exactly the headers given (fetch would add or refuse some, e.g. Origin). */
function send(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Answer> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method,
        headers:
          body === undefined ? headers : { 'content-length': String(Buffer.byteLength(body)), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface Probe {
  readonly group: string;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** admin: the installation's admin token; none: no credential. */
  readonly auth?: 'admin';
  readonly body?: { type: string; text: string };
  /** The CSP expected: the page's own for HTML, else the no-content one. */
  readonly csp: string;
}

const PROBES: readonly Probe[] = [
  { group: 'health', method: 'GET', path: '/healthz', status: 200, csp: NO_CONTENT_CSP },
  { group: 'health', method: 'GET', path: '/readyz', status: 200, csp: NO_CONTENT_CSP },
  {
    group: 'admin API',
    method: 'GET',
    path: '/admin/v1/users',
    status: 200,
    auth: 'admin',
    csp: NO_CONTENT_CSP,
  },
  { group: 'admin API (refused)', method: 'GET', path: '/admin/v1/users', status: 401, csp: NO_CONTENT_CSP },
  {
    group: 'admin API docs',
    method: 'GET',
    path: '/admin/v1/openapi.json',
    status: 200,
    csp: NO_CONTENT_CSP,
  },
  { group: 'self-service', method: 'GET', path: '/api/v1/me/keys', status: 401, csp: NO_CONTENT_CSP },
  { group: 'auth', method: 'GET', path: '/auth/methods', status: 200, csp: NO_CONTENT_CSP },
  {
    group: 'sign-in form (refused)',
    method: 'POST',
    path: '/auth/login',
    status: 401,
    body: { type: 'application/x-www-form-urlencoded', text: 'token=tga_wrong' },
    csp: FORM_PAGE_CSP,
  },
  { group: 'dashboard page', method: 'GET', path: '/login', status: 200, csp: DASHBOARD_CSP },
  { group: 'dashboard (redirect)', method: 'GET', path: '/users', status: 303, csp: NO_CONTENT_CSP },
  { group: 'dashboard asset', method: 'GET', path: '/assets/missing.js', status: 404, csp: NO_CONTENT_CSP },
  {
    group: 'enroll',
    method: 'POST',
    path: '/api/v1/enroll',
    status: 400,
    body: { type: 'application/json', text: '{"code":"ENR-WRONG"}' },
    csp: NO_CONTENT_CSP,
  },
  { group: 'metrics', method: 'GET', path: '/metrics', status: 200, csp: NO_CONTENT_CSP },
  { group: 'no route', method: 'GET', path: '/no/such/route', status: 404, csp: NO_CONTENT_CSP },
];

const APP = 'https://app.example.com';
const OTHER = 'https://evil.example.com';

describe('HTTP hygiene', () => {
  /** Defaults: no CORS, trust_proxy off, public URL http. Short timeouts for the slow-client cases. */
  let plain: Harness;
  /** Behind a TLS-terminating proxy: https public URL, trust_proxy on, one CORS origin. */
  let proxied: Harness;

  beforeAll(async () => {
    plain = await startHarness({
      timeouts: { headersTimeoutMs: 1_000, requestTimeoutMs: 5_000, keepAliveTimeoutMs: 5_000 },
    });
    proxied = await startHarness({
      yaml: `server: { public_url: "https://tollgate.example.com", trust_proxy: true, cors_origins: ["${APP}"] }\n`,
    });
  }, 60_000);

  afterAll(async () => {
    await plain?.close();
    await proxied?.close();
  });

  async function probe(h: Harness, p: Probe, extra: Record<string, string> = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...extra };
    if (p.auth === 'admin') headers.authorization = `Bearer ${h.adminToken}`;
    if (p.body) headers['content-type'] = p.body.type;
    const answer = await send(h.url, p.method, p.path, headers, p.body?.text);
    expect(answer.status, `${p.group}: ${p.method} ${p.path}`).toBe(p.status);
    return answer;
  }

  it('puts the security headers on a route of every group', async () => {
    for (const h of [plain, proxied]) {
      for (const p of PROBES) {
        const { headers } = await probe(h, p);
        const label = `${p.group}: ${p.method} ${p.path}`;
        expect(headers['x-content-type-options'], label).toBe('nosniff');
        expect(headers['x-frame-options'], label).toBe('DENY');
        expect(headers['referrer-policy'], label).toBe('no-referrer');
        expect(headers['cross-origin-opener-policy'], label).toBe('same-origin');
        expect(headers['cross-origin-resource-policy'], label).toBe('same-origin');
        expect(headers['content-security-policy'], label).toBe(p.csp);
        expect(headers['content-security-policy'], label).toContain("frame-ancestors 'none'");
        // Plain http (no forwarded proto): never HSTS.
        expect(headers['strict-transport-security'], label).toBeUndefined();
      }
    }
  });

  it('sends HSTS only when a trusted proxy says https and the public URL is https', async () => {
    for (const p of PROBES) {
      const label = `${p.group}: ${p.method} ${p.path}`;
      const viaTls = await probe(proxied, p, { 'x-forwarded-proto': 'https' });
      expect(viaTls.headers['strict-transport-security'], label).toBe(HSTS);
      const viaHttp = await probe(proxied, p, { 'x-forwarded-proto': 'http' });
      expect(viaHttp.headers['strict-transport-security'], label).toBeUndefined();
      // trust_proxy off: the same header from the client proves nothing.
      const untrusted = await probe(plain, p, { 'x-forwarded-proto': 'https' });
      expect(untrusted.headers['strict-transport-security'], label).toBeUndefined();
    }
  });

  it('leaves the gateway routes with their own headers', async () => {
    await plain.orgCredential();
    const key = await plain.key({ user: 'hygiene-gw' });
    const models = await send(plain.url, 'GET', '/v1/models', { 'x-api-key': key, origin: APP });
    expect(models.status).toBe(200);
    expect(models.headers['request-id']).toMatch(/^req_/);
    for (const name of ['x-frame-options', 'content-security-policy', 'cross-origin-resource-policy'])
      expect(models.headers[name], name).toBeUndefined();
    // Control: the same server puts them on its other routes.
    expect((await send(plain.url, 'GET', '/healthz')).headers['x-frame-options']).toBe('DENY');
  });

  describe('CORS', () => {
    const preflight = (origin: string) => ({
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type',
    });
    const corsHeaderNames = (a: Answer) =>
      Object.keys(a.headers).filter((n) => n.startsWith('access-control-'));

    it('is off without configured origins: no CORS headers, preflights get no allow headers', async () => {
      const simple = await send(plain.url, 'GET', '/admin/v1/users', {
        origin: APP,
        authorization: `Bearer ${plain.adminToken}`,
      });
      expect(simple.status).toBe(200);
      expect(corsHeaderNames(simple)).toEqual([]);
      expect(simple.headers.vary).toBeUndefined();
      const pre = await send(plain.url, 'OPTIONS', '/admin/v1/users', preflight(APP));
      expect(pre.status).toBe(404);
      expect(corsHeaderNames(pre)).toEqual([]);
    });

    it('allows a configured origin exactly, without credentials, and varies on Origin', async () => {
      const simple = await send(proxied.url, 'GET', '/admin/v1/users', {
        origin: APP,
        authorization: `Bearer ${proxied.adminToken}`,
      });
      expect(simple.status).toBe(200);
      expect(simple.headers['access-control-allow-origin']).toBe(APP);
      expect(simple.headers['access-control-allow-credentials']).toBeUndefined();
      expect(simple.headers['access-control-expose-headers']).toContain('request-id');
      expect(simple.headers.vary).toMatch(/\bOrigin\b/);
      const pre = await send(proxied.url, 'OPTIONS', '/admin/v1/users', preflight(APP));
      expect(pre.status).toBe(204);
      expect(pre.headers['access-control-allow-origin']).toBe(APP);
      expect(pre.headers['access-control-allow-methods']).toContain('POST');
      expect(pre.headers['access-control-allow-headers']).toContain('authorization');
      expect(pre.headers['access-control-allow-credentials']).toBeUndefined();
      // Security headers on the preflight too.
      expect(pre.headers['x-frame-options']).toBe('DENY');
    });

    it('never reflects another origin (nor one that merely starts like a listed one)', async () => {
      for (const origin of [OTHER, `${APP}.evil.example`, `${APP}:8443`, 'null']) {
        const simple = await send(proxied.url, 'GET', '/admin/v1/users', {
          origin,
          authorization: `Bearer ${proxied.adminToken}`,
        });
        expect(simple.status, origin).toBe(200);
        expect(corsHeaderNames(simple), origin).toEqual([]);
        expect(simple.headers.vary, origin).toMatch(/\bOrigin\b/);
        const pre = await send(proxied.url, 'OPTIONS', '/admin/v1/users', preflight(origin));
        expect(pre.status, origin).toBe(404);
        expect(corsHeaderNames(pre), origin).toEqual([]);
      }
    });

    it('keeps a route’s own Vary and adds Origin to it', async () => {
      const asset = await send(proxied.url, 'GET', '/assets/missing.js', { origin: APP });
      expect(asset.headers.vary).toMatch(/\bOrigin\b/);
    });
  });

  describe('body limits per route group', () => {
    /** A JSON body of exactly `size` bytes: the object, padded with whitespace (valid JSON). */
    const padded = (json: string, size: number) => `${json.slice(0, -1)}${' '.repeat(size - json.length)}}`;

    const groups = [
      {
        group: 'admin API',
        path: '/admin/v1/users',
        limit: API_BODY_LIMIT,
        json: (n: number) => `{"name":"hygiene-${n}"}`,
        underStatus: 201,
        auth: true,
      },
      {
        group: 'sign-in',
        path: '/auth/login',
        limit: 16 * 1024,
        json: () => '{"token":"tga_wrong"}',
        underStatus: 401,
      },
      {
        group: 'enroll',
        path: '/api/v1/enroll',
        limit: 1024,
        json: () => '{"code":"ENR-WRONG"}',
        underStatus: 400,
      },
    ] as const;

    for (const g of groups) {
      it(`${g.group}: ${g.limit} bytes are read, one more is refused with 413`, async () => {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if ('auth' in g) headers.authorization = `Bearer ${plain.adminToken}`;
        const under = await send(plain.url, 'POST', g.path, headers, padded(g.json(1), g.limit));
        expect(under.status).toBe(g.underStatus);
        const over = await send(plain.url, 'POST', g.path, headers, padded(g.json(2), g.limit + 1));
        expect(over.status).toBe(413);
        const error = (
          JSON.parse(over.body) as { error: { code: string; message: string; requestId: string } }
        ).error;
        expect(error.code).toBe('too_large');
        expect(error.requestId).toMatch(/^req_/);
        expect(over.headers['x-content-type-options']).toBe('nosniff');
      });
    }
  });

  describe('slow clients', () => {
    /** Opens a connection, sends `head`, then one header line every `everyMs`; resolves when the server closes. */
    function dribble(base: string, head: string, everyMs: number, stopAfter = Number.POSITIVE_INFINITY) {
      const url = new URL(base);
      const socket = connect(Number(url.port), url.hostname);
      let received = '';
      let sent = 0;
      const started = performance.now();
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString();
      });
      socket.on('connect', () => socket.write(head));
      const timer = setInterval(() => {
        if (socket.destroyed || socket.writableEnded) return;
        if (sent >= stopAfter) {
          clearInterval(timer);
          socket.write('\r\n');
          return;
        }
        sent++;
        socket.write(`x-drip-${sent}: a\r\n`);
      }, everyMs);
      return new Promise<{ ms: number; received: string }>((resolve) => {
        const done = () => {
          clearInterval(timer);
          resolve({ ms: performance.now() - started, received });
        };
        socket.on('close', done);
        socket.on('error', () => undefined);
        // The control request completes: stop waiting once its answer is in.
        socket.on('data', () => {
          if (stopAfter !== Number.POSITIVE_INFINITY && /\r\n\r\n/.test(received)) socket.destroy();
        });
      });
    }

    for (const path of ['GET /healthz', 'POST /v1/messages']) {
      it(`closes a connection dribbling its headers (${path}) after the headers timeout`, async () => {
        const { ms, received } = await dribble(plain.url, `${path} HTTP/1.1\r\nhost: x\r\n`, 100);
        expect(received).toMatch(/^HTTP\/1\.1 408/);
        // Bound: headersTimeout (1 s) + the check interval (250 ms); generous slack for a loaded machine.
        expect(ms).toBeGreaterThanOrEqual(900);
        expect(ms).toBeLessThan(1_250 + 4_000);
      });
    }

    it('answers a slow but finished request within the bound (control)', async () => {
      const { received } = await dribble(plain.url, 'GET /healthz HTTP/1.1\r\nhost: x\r\n', 100, 3);
      expect(received).toMatch(/^HTTP\/1\.1 200/);
    });
  });
});
