// Enrollment: POST /api/v1/enroll exchanges a one-time code for a gateway key (single use, 15-minute
// expiry, one answer for every bad code, attempts limited per address); the key then works through the
// gateway with the official SDK configured the way Claude Code configures it.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttemptLimiterOptions } from '../../src/claude-code/attempt-limiter.js';
import { createCoderService } from '../../src/claude-code/coder.service.js';
import { createEnrollmentService } from '../../src/claude-code/enrollment.service.js';
import { ENROLLMENT_TTL_MS } from '../../src/claude-code/enrollment-code.js';
import type { Config } from '../../src/config/load.js';
import { enrollRoutes } from '../../src/http/enroll.routes.js';
import { buildServer } from '../../src/http/server.js';
import { createLogger } from '../../src/observability/logger.js';
import { runCli } from '../helpers/cli.js';
import { type Harness, startHarness } from '../helpers/gateway.js';

const CLAUDE_CODE_BETAS =
  'claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14';

describe('enrollment', () => {
  let h: Harness;
  let now = Date.now();
  const clock = () => now;
  let config: Config;
  let enrollment: ReturnType<typeof createEnrollmentService>;
  const closers: Array<() => Promise<unknown>> = [];

  /** A server with only the enroll routes on the harness's installation (independent of server.ts wiring). */
  async function enrollServer(attempts: AttemptLimiterOptions): Promise<string> {
    const sink = new Writable({ write: (_c, _e, done) => done() });
    const app = await buildServer({
      installation: h.installation,
      logger: createLogger('info', sink),
      bodyLimit: h.config.server.body_limit_bytes,
      trustProxy: false,
      version: 'test',
    });
    await app.register(enrollRoutes({ installation: h.installation, config, clock, attempts }));
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    closers.push(() => app.close());
    return url;
  }

  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${url}/api/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  async function newCode(user: string): Promise<string> {
    const coders = createCoderService(
      { installation: h.installation, clock },
      {
        users: h.services.users,
        keys: h.services.keys,
        modelsAllowed: [],
      },
    );
    const { user: view } = await coders.ensureUser(h.admin, {
      name: user,
      team: null,
      monthlyBudgetMicro: null,
    });
    return (await enrollment.create(h.admin, { userId: view.id, model: 'claude-sonnet-4-6' })).code;
  }

  let url: string;
  beforeAll(async () => {
    h = await startHarness({ clock });
    await h.orgCredential();
    config = { ...h.config, server: { ...h.config.server, public_url: h.url } };
    const ctx = { installation: h.installation, clock };
    const coders = createCoderService(ctx, {
      users: h.services.users,
      keys: h.services.keys,
      modelsAllowed: [],
    });
    enrollment = createEnrollmentService(ctx, { coders });
    url = await enrollServer({ limit: 1_000, windowMs: 60_000, maxClients: 100 });
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await h.close();
  });

  const INVALID = 'invalid, expired or already used enrollment code';

  it('exchanges a code once for a key, the settings to write and the profile', async () => {
    const code = await newCode('alice');
    const response = await post(url, { code });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as { key: string };
    expect(body).toEqual({
      key: expect.stringMatching(/^tg_/),
      base_url: h.url,
      model: 'claude-sonnet-4-6',
      deny: h.config.claude_code.deny,
      profile: 'alice',
    });
    const [key] = await h.services.keys.list({ user: 'alice' });
    expect(key).toMatchObject({ name: 'claude-code', createdBy: 'enroll:alice', status: 'active' });
    // Read through the service: a person named as actor is stored by id and listed by name.
    const audit = (await h.services.audit.list({ limit: 1000 }))
      .filter((e) => e.action.startsWith('enrollment.'))
      .map((e) => ({ actor: e.actor, action: e.action }));
    expect(audit).toEqual([
      { actor: 'test-admin', action: 'enrollment.create' },
      { actor: 'enroll:alice', action: 'enrollment.redeem' },
    ]);

    const again = await post(url, { code });
    expect(again.status).toBe(400);
    expect(((await again.json()) as { error: { message: string } }).error.message).toBe(INVALID);
  });

  it('answers wrong, malformed and expired codes alike', async () => {
    const expired = await newCode('bob');
    now += ENROLLMENT_TTL_MS;
    const bodies = await Promise.all(
      [{ code: 'ENR-0000-0000-0000-0000' }, { code: 'nonsense' }, { code: expired }].map(async (b) => {
        const r = await post(url, b);
        return {
          status: r.status,
          message: ((await r.json()) as { error: { message: string } }).error.message,
        };
      }),
    );
    expect(bodies).toEqual(Array(3).fill({ status: 400, message: INVALID }));
    // Typing variations of a live code still work.
    const code = await newCode('bob');
    expect((await post(url, { code: code.toLowerCase().replaceAll('-', ' ') })).status).toBe(200);
  });

  it('lets exactly one of two concurrent redemptions win', async () => {
    const code = await newCode('carol');
    const statuses = await Promise.all([post(url, { code }), post(url, { code })]).then((rs) =>
      rs.map((r) => r.status),
    );
    expect(statuses.sort()).toEqual([200, 400]);
    expect(await h.services.keys.list({ user: 'carol' })).toHaveLength(1);
  });

  it('takes small JSON bodies only', async () => {
    expect((await post(url, 'code=ENR', { 'content-type': 'text/plain' })).status).toBe(400);
    expect((await post(url, { code: 'x'.repeat(2_000) })).status).toBe(413);
    expect((await post(url, { code: 'ENR-0000-0000-0000-0000', extra: 1 })).status).toBe(400);
  });

  it('limits attempts per client address (429 with retry-after)', async () => {
    const limited = await enrollServer({ limit: 3, windowMs: 60_000, maxClients: 100 });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await post(limited, { code: 'ENR-0000-0000-0000-0000' })).status);
    expect(statuses).toEqual([400, 400, 400, 429, 429]);
    const refused = await post(limited, { code: await newCode('dave') });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await refused.json()).toMatchObject({ error: { code: 'rate_limited' } });
  });

  it('the enrolled key works with the SDK configured like Claude Code, attributed to the coder', async () => {
    const code = await newCode('erin');
    const { key } = (await (await post(url, { code })).json()) as { key: string };
    await h.refresh();
    const client = new Anthropic({
      baseURL: h.url,
      apiKey: key,
      maxRetries: 0,
      defaultHeaders: { authorization: `Bearer ${key}`, 'anthropic-beta': CLAUDE_CODE_BETAS },
    });
    // Claude Code posts to /v1/messages?beta=true; this SDK's beta.messages does not add the query itself.
    const message = await client.beta.messages.create(
      {
        model: 'claude-sonnet-4-6',
        max_tokens: 64,
        messages: [{ role: 'user', content: 'say hi [[fake output_tokens=5]]' }],
      },
      { query: { beta: 'true' } },
    );
    expect(message.usage.output_tokens).toBe(5);
    const served = h.fake.served.at(-1);
    expect(served).toMatchObject({ path: '/v1/messages', query: { beta: 'true' } });
    expect(served?.headers.anthropicBeta).toEqual(CLAUDE_CODE_BETAS.split(','));
    // Both client headers carried the gateway key; neither reaches Anthropic (the org credential does).
    expect(served?.apiKey).not.toBe(key);
    expect(served?.rawHeaders.authorization).toBeUndefined();
    const erin = await h.services.users.get('erin');
    const [issued] = await h.services.keys.list({ user: 'erin' });
    const row = await h.installation.db.kysely
      .selectFrom('usage_records')
      .selectAll()
      .where('key_id', '=', issued?.id ?? '')
      .executeTakeFirst();
    expect(row).toMatchObject({
      user_id: erin.id,
      model: 'claude-sonnet-4-6',
      output_tokens: 5,
      status: 200,
    });
  });

  it('claude-code setup redeems the code, stores the key and writes the settings (CLI)', async () => {
    const code = await newCode('frank');
    const dir = await mkdtemp(join(tmpdir(), 'tollgate-setup-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const env = {
      TOLLGATE_KEY_STORE: 'file',
      XDG_CONFIG_HOME: join(dir, 'cfg'),
      TOLLGATE_TEST_CWD: join(dir, 'proj'),
    };
    const result = await runCli(
      ['claude-code', 'setup', '--server', url, '--code', code, '--project', join(dir, 'proj')],
      env,
    );
    expect(result.code, result.stderr).toBe(0);
    const keyFile = join(dir, 'cfg', 'tollgate', 'keys', 'frank.key');
    expect(result.stdout).toContain(`Stored your gateway key for profile frank in ${keyFile}`);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const settings = JSON.parse(await readFile(join(dir, 'proj', '.claude', 'settings.json'), 'utf8'));
    expect(settings).toMatchObject({
      env: { ANTHROPIC_BASE_URL: h.url },
      model: 'claude-sonnet-4-6',
      permissions: { deny: [...h.config.claude_code.deny] },
    });
    expect(settings.apiKeyHelper).toMatch(/claude-code key-helper --profile frank$/);
    expect(JSON.stringify(settings)).not.toContain('tg_');

    const reused = await runCli(
      ['claude-code', 'setup', '--server', url, '--code', code, '--project', join(dir, 'proj')],
      env,
    );
    expect(reused.code).toBe(1);
    expect(reused.stderr).toBe(
      'error: the enrollment code is invalid, expired or already used; ask your admin for a new one\n',
    );
  });
});
