// `tollgate doctor` on a multi-instance set-up: one PostgreSQL schema, Redis, and live instances
// registered the way `tollgate serve` registers them (their clocks set off by chosen amounts, to check
// the skew bounds). Every failure beside the healthy set-up it departs from.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ChangeSubscription, changeChannel, subscribeChanges } from '../../src/changes/push.js';
import { CLOCK_FAIL_MS, CLOCK_WARN_MS, redisKind } from '../../src/cli/commands/doctor-instances.js';
import { loadConfig } from '../../src/config/load.js';
import { type Installation, openInstallation } from '../../src/install/installation.js';
import { acquireServeLease, type HeldLease } from '../../src/install/serve-lease.js';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { type CliHome, tempHome } from '../helpers/cli.js';
import { createPgSchema, PG_URL, type PgSchema } from '../helpers/pg.js';

const REDIS_URL = process.env.TOLLGATE_TEST_REDIS_URL;

interface DoctorCheck {
  check: string;
  ok: boolean;
  warning?: boolean;
  detail: string;
}

describe('redisKind', () => {
  it('accepts Redis 7 or later and Valkey, and refuses older Redis or an unknown server', () => {
    expect(redisKind('# Server\r\nredis_version:7.0.15\r\n')).toEqual({ ok: true, label: 'Redis 7.0.15' });
    expect(redisKind('redis_version:8.2.1\r\n').ok).toBe(true);
    expect(redisKind('redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.2\r\n')).toEqual({
      ok: true,
      label: 'Valkey 8.0.2',
    });
    expect(redisKind('redis_version:6.2.14\r\n')).toMatchObject({ ok: false });
    expect(redisKind('redis_version:6.2.14\r\n').label).toContain('Redis 7 or later');
    expect(redisKind('something:else\r\n').ok).toBe(false);
  });
});

describe.skipIf(!PG_URL || !REDIS_URL)('tollgate doctor: several instances on PostgreSQL and Redis', () => {
  let schema: PgSchema;
  let fake: FakeUpstream;
  let cli: CliHome;
  let installation: Installation;
  const held: HeldLease[] = [];
  const subscriptions: ChangeSubscription[] = [];

  beforeAll(async () => {
    schema = await createPgSchema(PG_URL as string);
    fake = await startFakeUpstream();
    cli = await tempHome({
      TOLLGATE_DATABASE_URL: schema.url,
      TOLLGATE_MASTER_KEY: randomBytes(32).toString('base64'),
      TOLLGATE_REDIS_URL: REDIS_URL as string,
      TOLLGATE_UPSTREAM_URL: fake.url,
    });
    expect((await cli.run(['init'])).code).toBe(0);
    installation = await openInstallation(await loadConfig({ env: cli.env, cwd: process.cwd() }));
  });
  afterEach(async () => {
    for (const s of subscriptions.splice(0)) await s.close();
    for (const lease of held.splice(0)) await lease.release();
  });
  afterAll(async () => {
    await installation?.close();
    await fake?.close();
    await cli?.cleanup();
    await schema?.drop();
  });

  /** A live instance as `tollgate serve` registers it, whose clock runs `skewMs` ahead of the database's. */
  async function instance(n: number, skewMs: number, options: { subscribed?: boolean } = {}): Promise<void> {
    const lease = await acquireServeLease(
      installation.db,
      {
        clock: () => Date.now() + skewMs,
        host: `node-${n}`,
        pid: 1000 + n,
        pidStart: null,
        isAlive: () => true,
        databaseClock: true,
      },
      () => {},
      60_000,
      true,
    );
    held.push(lease);
    if (options.subscribed !== false) {
      const sub = subscribeChanges(REDIS_URL as string, changeChannel(installation.orgId), () => {});
      subscriptions.push(sub);
      while (sub.state() !== 'subscribed') await new Promise((r) => setTimeout(r, 10));
    }
  }

  async function doctor(env: Record<string, string> = {}) {
    const text = await cli.run(['doctor'], { env });
    const json = await cli.run(['doctor', '--json'], { env });
    return {
      code: text.code,
      text: text.stdout,
      json: JSON.parse(json.stdout) as DoctorCheck[],
      jsonCode: json.code,
    };
  }
  const find = (checks: DoctorCheck[], name: string) => checks.find((c) => c.check === name);

  it('healthy: Redis 7, two instances sharing through Redis, both subscribed, clocks close — every check passes', async () => {
    await instance(1, 0);
    await instance(2, 40);
    const { code, text, json, jsonCode } = await doctor();
    expect(code).toBe(0);
    expect(jsonCode).toBe(0);
    expect(text).toMatch(/✓ redis\s+redis:\/\/127\.0\.0\.1:\d+\/?: Redis 7\.\d+\.\d+, answered in \d+ ms/);
    expect(text).toMatch(/✓ instances\s+2 live, sharing through Redis: node-1 pid 1001, node-2 pid 1002/);
    expect(text).toMatch(/✓ push\s+2 subscriber\(s\) hear pushed changes/);
    expect(text).toMatch(
      /✓ clock\s+against the database: this host [+-]\d+ ms, node-1 [^,]+, node-2 pid 1002 \+(3\d|4\d|5\d) ms, redis [+-]\d+ ms; between instances \d+ ms/,
    );
    expect(json.every((c) => c.ok && !c.warning)).toBe(true);
    expect(json.map((c) => c.check)).toEqual(
      expect.arrayContaining(['database', 'redis', 'instances', 'push', 'clock', 'upstream']),
    );
  });

  it(`a clock ${CLOCK_WARN_MS} ms+ off warns (exit 0); ${CLOCK_FAIL_MS} ms+ off fails (exit non-zero)`, async () => {
    await instance(1, 0);
    await instance(2, CLOCK_WARN_MS + 1_500);
    const warned = await doctor();
    expect(warned.code).toBe(0);
    expect(warned.text).toMatch(/! clock\s+skew: .*node-2 pid 1002 \+25\d\d ms/);
    expect(find(warned.json, 'clock')).toMatchObject({ ok: true, warning: true });
    await instance(3, CLOCK_FAIL_MS + 3_000);
    const failed = await doctor();
    expect(failed.code).not.toBe(0);
    expect(failed.jsonCode).not.toBe(0);
    expect(failed.text).toMatch(
      /✗ clock\s+skew too large: .*node-3 pid 1003 \+80\d\d ms.*synchronise the clocks/,
    );
    expect(find(failed.json, 'clock')).toMatchObject({ ok: false });
  });

  it('several instances checked with a configuration without Redis are flagged', async () => {
    await instance(1, 0);
    await instance(2, 0);
    const { code, text } = await doctor({ TOLLGATE_REDIS_URL: '' });
    expect(code).not.toBe(0);
    expect(text).toMatch(/✓ redis\s+not configured/);
    expect(text).toMatch(
      /✗ instances\s+2 live .* but this configuration has no Redis: .*set TOLLGATE_REDIS_URL/,
    );
  });

  it('one instance that does not hear pushed changes is a warning, not a failure', async () => {
    await instance(1, 0);
    await instance(2, 0, { subscribed: false });
    const { code, text } = await doctor();
    expect(code).toBe(0);
    expect(text).toMatch(/! push\s+1 of 2 live instance\(s\) hear pushed changes/);
  });

  it('Redis unreachable fails the redis check and the exit status', async () => {
    const port = await freePort();
    const { code, text, json } = await doctor({ TOLLGATE_REDIS_URL: `redis://:s3cret-pw@127.0.0.1:${port}` });
    expect(code).not.toBe(0);
    expect(text).toMatch(/✗ redis\s+Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/? did not answer/);
    expect(text).not.toContain('s3cret-pw');
    expect(find(json, 'redis')).toMatchObject({ ok: false });
    // The database checks still ran.
    expect(find(json, 'database')).toMatchObject({ ok: true });
  });
});

describe('tollgate doctor on SQLite (one instance)', () => {
  it('reports Redis as not configured and one clock, and passes', async () => {
    const fake = await startFakeUpstream();
    const cli = await tempHome({ TOLLGATE_UPSTREAM_URL: fake.url });
    try {
      expect((await cli.run(['init'])).code).toBe(0);
      const result = await cli.run(['doctor']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/✓ redis\s+not configured \(one instance\)/);
      expect(result.stdout).toMatch(/✓ instances\s+no server is running/);
      expect(result.stdout).toMatch(/✓ clock\s+SQLite: one host, one clock/);
    } finally {
      await cli.cleanup();
      await fake.close();
    }
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}
