// Budgets exact across instances, with real processes: three `tollgate serve` (the compiled CLI) on
// one PostgreSQL schema and one Redis database, driven by the official SDK. A budget worth K requests
// admits at most K of 300 concurrent requests spread over the three and is then used to within one
// worst case, never beyond (the ledger and the fake upstream's billing agree); `kill -9` of one
// instance under load loses no acknowledged usage record and leaks no reservation past its expiry;
// Redis emptied mid-run (FLUSHDB, as a restarted Redis) overspends nothing. The same budget check on
// SQLite for one instance; a second server on one SQLite file, or on PostgreSQL without Redis, is
// refused (each beside a server that serves).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSpend } from '../../src/budgets/spend.js';
import { loadConfig } from '../../src/config/load.js';
import type { Db } from '../../src/db/connect.js';
import { initInstallation } from '../../src/install/installation.js';
import { worstCaseMicro } from '../../src/pricing/cost.js';
import { inputTokenUpperBound } from '../../src/pricing/input-bound.js';
import { createPriceBook } from '../../src/pricing/models.js';
import { connectRedis } from '../../src/redis/connect.js';
import { createServices, type Services } from '../../src/services.js';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { createPgSchema, PG_URL } from '../helpers/pg.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tollgate.js');
const REDIS_URL = process.env.TOLLGATE_TEST_REDIS_URL;
/** A Redis database of this file's own: the test empties it. */
const REDIS_DB = 14;
const MODEL = 'claude-haiku-4-5';
const PARAMS = {
  model: MODEL,
  max_tokens: 40,
  messages: [{ role: 'user' as const, content: 'scale [[fake output_tokens=40]]' }],
};
/**
 * Short, so reservations of a killed instance expire quickly (4 s + 4 s retry budget + 5 s margin), yet
 * long enough that the hanging requests are still waiting when their instance is killed on a busy machine.
 */
const TIMEOUT_MS = 4_000;
const TTL_MS = TIMEOUT_MS + TIMEOUT_MS + 5_000;
const admin = { actor: 'test-admin' };

interface Server {
  child: ChildProcess;
  url: string;
  output: () => string;
}

function spawnCli(cwd: string, env: Record<string, string>, args: string[]): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function collect(child: ChildProcess): () => string {
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return () => output;
}

function serve(cwd: string, env: Record<string, string>): Promise<Server> {
  const child = spawnCli(cwd, env, ['serve', '--port', '0']);
  const output = collect(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output()}`)), 60_000);
    child.stdout?.on('data', () => {
      const m = /listening on (http:\/\/\S+)/.exec(output());
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ child, url: m[1], output });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited ${code}:\n${output()}`));
    });
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

const client = (s: Server, key: string) =>
  new Anthropic({ apiKey: key, baseURL: s.url, maxRetries: 0, timeout: 20_000 });

/** A request the fake upstream never answers (Tollgate gives up after TIMEOUT_MS). */
const HANGING = { ...PARAMS, messages: [{ role: 'user' as const, content: 'x [[fake fault=hang]]' }] };

/** A request answered after 700 ms (still running when Redis is emptied). */
const SLOW = {
  ...PARAMS,
  messages: [
    { role: 'user' as const, content: 'scale [[fake output_tokens=40 fault=slow-stream delay_ms=700]]' },
  ],
};

/** The worst case Tollgate reserves for a request. */
function worstCase(params: typeof PARAMS = PARAMS): number {
  const price = createPriceBook({}).lookup(MODEL);
  if (!price) throw new Error('unpriced');
  const bound = inputTokenUpperBound(params, { imageTokenAllowance: 1600, documentTokenAllowance: 200_000 });
  if ('unbounded' in bound) throw new Error('unbounded');
  return worstCaseMicro(price, {
    inputTokensUpperBound: bound.tokens,
    maxOutputTokens: params.max_tokens,
    webSearchUses: 0,
    cacheWrite1hPossible: false,
  });
}

interface Setup {
  dir: string;
  env: Record<string, string>;
  db: Db;
  services: Services;
  orgId: string;
  close(): Promise<void>;
}

/** An installation (created in-process) with an org credential; servers are started on it later. */
async function install(fake: FakeUpstream, extra: Record<string, string>): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-scale-'));
  const env = {
    TOLLGATE_HOME: join(dir, 'home'),
    TOLLGATE_UPSTREAM_URL: fake.url,
    TOLLGATE_UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS),
    ...extra,
  };
  const config = await loadConfig({ env, cwd: dir });
  const { installation } = await initInstallation(config, Date.now, 'test');
  const services = createServices(installation, config, Date.now);
  await services.credentials.add(admin, {
    name: 'org-key',
    provider: 'anthropic',
    secret: canaryAnthropicKey(),
    validate: true,
  });
  return {
    dir,
    env,
    db: installation.db,
    services,
    orgId: installation.orgId,
    async close() {
      await installation.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function issueKey(s: Services, user: string, monthlyBudgetMicro: number | null): Promise<string> {
  if (!(await s.users.list()).some((u) => u.name === user))
    await s.users.add(admin, { name: user, team: null, monthlyBudgetMicro: null });
  return (await s.keys.issue(admin, { user, policy: { monthlyBudgetMicro } })).key;
}

/** A refusal the test did not expect, with what each server logged (warnings name the cause). */
function unexpected(error: unknown, servers: readonly Server[]): Error {
  const logs = servers.map((s, i) => `server ${i}:\n${s.output().slice(-3_000)}`).join('\n');
  return new Error(`unexpected ${error instanceof Error ? error.message : String(error)}\n${logs}`);
}

async function ledgerRows(db: Db) {
  return db.kysely.selectFrom('usage_records').selectAll().where('endpoint', '=', 'messages').execute();
}

/** Rows of one user's requests (each key here has a user of its own). */
async function rowsOfUser(db: Db, name: string) {
  const user = await db.kysely.selectFrom('users').select('id').where('name', '=', name).executeTakeFirst();
  return (await ledgerRows(db)).filter((r) => r.user_id === user?.id);
}

/**
 * The budget check: a key whose monthly budget is worth K requests; 300 concurrent requests spread over
 * the servers admit at most K; sequential ones then fill it to within one worst case, never beyond.
 */
async function budgetRace(servers: Server[], setup: Setup, fake: FakeUpstream) {
  const K = 20;
  const probeKey = await issueKey(setup.services, 'probe', null);
  await client(servers[0] as Server, probeKey).messages.create(PARAMS);
  const unit = (await rowsOfUser(setup.db, 'probe'))[0]?.cost_micro ?? 0;
  expect(unit).toBeGreaterThan(0);
  const budget = K * unit;
  const key = await issueKey(setup.services, 'racer', budget);
  // Every server applies the new key within its change-feed poll.
  await new Promise((resolve) => setTimeout(resolve, 600));
  const servedBefore = fake.served.filter((s) => s.path === '/v1/messages' && s.status === 200).length;

  const results = await Promise.allSettled(
    Array.from({ length: 300 }, (_, i) =>
      client(servers[i % servers.length] as Server, key).messages.create(PARAMS),
    ),
  );
  const admitted = results.filter((r) => r.status === 'fulfilled').length;
  expect(admitted).toBeGreaterThan(0);
  expect(admitted).toBeLessThanOrEqual(K);
  for (const r of results) {
    if (r.status === 'fulfilled') continue;
    const error = r.reason as InstanceType<typeof Anthropic.RateLimitError>;
    if (!(error instanceof Anthropic.RateLimitError)) throw unexpected(error, servers);
    expect(
      (error.error as { error?: { details?: { error_code?: string } } }).error?.details?.error_code,
    ).toBe('enforced_spend_limit_reached');
  }
  let sequential = 0;
  for (let i = 0; i < 3 * K; i++) {
    try {
      await client(servers[i % servers.length] as Server, key).messages.create(PARAMS);
      sequential++;
    } catch (error) {
      expect(error).toBeInstanceOf(Anthropic.RateLimitError);
      break;
    }
  }
  const rows = (await rowsOfUser(setup.db, 'racer')).filter((r) => r.status === 200);
  const spent = rows.reduce((sum, r) => sum + r.cost_micro, 0);
  expect(rows).toHaveLength(admitted + sequential);
  expect(spent).toBeLessThanOrEqual(budget);
  expect(spent).toBeGreaterThanOrEqual(budget - worstCase());
  // The upstream's own billing (what it served) agrees: nothing beyond what the ledger holds.
  const served =
    fake.served.filter((s) => s.path === '/v1/messages' && s.status === 200).length - servedBefore;
  expect(served).toBe(rows.length);
  expect(served * unit).toBeLessThanOrEqual(budget);
}

describe.skipIf(!PG_URL || !REDIS_URL)('three instances on PostgreSQL + Redis', () => {
  let fake: FakeUpstream;
  let setup: Setup;
  let dropSchema: () => Promise<void>;
  let redis: Redis;
  const servers: Server[] = [];
  /** What the org's all-time counter in Redis holds beyond the ledger's settled spend: its reservations. */
  const orgReserved = async () =>
    Number((await redis.hget(`tollgate:budget:${setup.orgId}:c:org:${setup.orgId}`, 't')) ?? 0) -
    (await loadSpend(setup.db.kysely, 'org', setup.orgId, 'total', 0));

  beforeAll(async () => {
    fake = await startFakeUpstream({ latencyMs: 40 });
    const schema = await createPgSchema(PG_URL ?? '');
    dropSchema = schema.drop;
    const redisUrl = new URL(REDIS_URL ?? '');
    redisUrl.pathname = `/${REDIS_DB}`;
    redis = await connectRedis(redisUrl.toString());
    await redis.flushdb();
    setup = await install(fake, {
      TOLLGATE_DATABASE_URL: schema.url,
      TOLLGATE_REDIS_URL: redisUrl.toString(),
    });
    // All three serve at once (a server without Redis would be refused beside them).
    servers.push(...(await Promise.all([0, 1, 2].map(() => serve(setup.dir, setup.env)))));
    // Started together on an empty Redis, each sees the others live: budgets wait one quarantine
    // (another instance might have had requests in flight when Redis lost its data).
    const warm = await issueKey(setup.services, 'warm', null);
    await new Promise((resolve) => setTimeout(resolve, 600));
    const until = Date.now() + 20_000;
    for (;;) {
      const answered = await client(servers[0] as Server, warm)
        .messages.create(PARAMS)
        .then(() => true)
        .catch((error: unknown) => {
          if (!(error instanceof Anthropic.APIError && error.status === 503) || Date.now() > until)
            throw error;
          return false;
        });
      if (answered) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }, 60_000);
  afterAll(async () => {
    for (const s of servers)
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await Promise.all(servers.map((s) => exited(s.child)));
    await redis?.flushdb();
    redis?.disconnect();
    await setup?.close();
    await dropSchema?.();
    await fake?.close();
  });

  it('admits at most K of 300 concurrent requests over three instances, then fills the budget to within one worst case', async () => {
    await budgetRace(servers, setup, fake);
  }, 60_000);

  it('kill -9 of one instance under load loses no acknowledged record and leaks no reservation past its expiry', async () => {
    const key = await issueKey(setup.services, 'loader', null);
    await new Promise((resolve) => setTimeout(resolve, 600));
    const victim = servers[2] as Server;
    // Requests the victim will never finish (the upstream hangs), and ordinary load on all three.
    const refusals: unknown[] = [];
    const hanging = Array.from({ length: 8 }, () =>
      client(victim, key)
        .messages.create(HANGING)
        .catch((error: unknown) => {
          // Given up on by Tollgate after TIMEOUT_MS (a 5xx then): expected. Refused at once: not.
          if (!(error instanceof Anthropic.APIError) || error.status === 503) refusals.push(error);
          return null;
        }),
    );
    // All eight admitted (reserved) before the load starts.
    const hangingSince = Date.now();
    const admittedBy = Date.now() + 10_000;
    while ((await orgReserved()) < 8 * worstCase(HANGING) && Date.now() < admittedBy) {
      if (refusals.length > 0) throw unexpected(refusals[0], servers);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const acknowledged: string[] = [];
    let victimAcknowledged = 0;
    const load = Array.from({ length: 90 }, async (_, i) => {
      await new Promise((resolve) => setTimeout(resolve, (i % 30) * 15));
      try {
        const { response } = await client(servers[i % 3] as Server, key)
          .messages.create(PARAMS)
          .withResponse();
        acknowledged.push(response.headers.get('x-tollgate-request-id') ?? '');
        if (i % 3 === 2) victimAcknowledged++;
      } catch {
        // Requests to the killed instance fail: not acknowledged.
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 250));
    victim.child.kill('SIGKILL');
    await exited(victim.child);
    const killedAt = Date.now();
    // The premise: the hanging requests were still waiting for the upstream (not yet given up on and
    // recorded at their worst case) when their instance died.
    expect(killedAt - hangingSince, 'the machine was too slow to kill in time').toBeLessThan(TIMEOUT_MS);
    await Promise.all(load);
    await Promise.all(hanging);
    expect(acknowledged.length).toBeGreaterThan(50);
    // Every acknowledged answer has its record in the ledger.
    const ids = new Set((await ledgerRows(setup.db)).map((r) => r.id));
    expect(acknowledged.filter((id) => !ids.has(id))).toEqual([]);
    // The victim's reservations are still held (a request may run that long), never released early…
    const held = await orgReserved();
    expect(held).toBeGreaterThanOrEqual(8 * worstCase(HANGING));
    expect(Date.now() - killedAt).toBeLessThan(TTL_MS - 5_000);
    // …and released once their time is up (the live instances' renewals sweep them): nothing leaks.
    const deadline = killedAt + TTL_MS + 8_000;
    while ((await redis.zcard(`tollgate:budget:${setup.orgId}:deadlines`)) !== 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 250));
    const open = await redis.zrange(`tollgate:budget:${setup.orgId}:deadlines`, 0, -1, 'WITHSCORES');
    expect(open, `open reservations; counters − ledger = ${await orgReserved()}`).toEqual([]);
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(TTL_MS - 5_000);
    // What the counters hold beyond the ledger is only answers the victim settled and had not yet
    // committed when it died (answered upstream, so billed: counted, never released): whole requests'
    // costs, none acknowledged. Never below the ledger.
    const unit = (await rowsOfUser(setup.db, 'loader')).find((r) => r.status === 200)?.cost_micro ?? 0;
    const excess = await orgReserved();
    expect(unit).toBeGreaterThan(0);
    expect(excess % unit, `excess ${excess} is not whole answers of ${unit}`).toBe(0);
    expect(excess).toBeGreaterThanOrEqual(0);
    expect(excess / unit).toBeLessThanOrEqual(30 - victimAcknowledged);
  }, 60_000);

  it('Redis emptied mid-run (restarted empty) overspends nothing: counters are rebuilt from the ledger', async () => {
    const live = servers.slice(0, 2);
    const unit = (await ledgerRows(setup.db)).find((r) => r.status === 200)?.cost_micro ?? 0;
    const budget = 15 * unit;
    const key = await issueKey(setup.services, 'flushed', budget);
    await new Promise((resolve) => setTimeout(resolve, 600));
    const outcomes: Array<'ok' | 'budget' | 'unavailable'> = [];
    const fire = (i: number, params: typeof PARAMS) =>
      client(live[i % 2] as Server, key)
        .messages.create(params)
        .then(
          () => outcomes.push('ok'),
          (error: unknown) => {
            if (error instanceof Anthropic.RateLimitError) outcomes.push('budget');
            else if (error instanceof Anthropic.APIError && error.status === 503) {
              expect(error.message).toMatch(/budgets cannot be checked/);
              outcomes.push('unavailable');
            } else throw error;
          },
        );
    // Requests that fill the budget and are still running when Redis loses their reservations…
    const first = Array.from({ length: 40 }, (_, i) => fire(i, SLOW));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await redis.flushdb();
    // …and requests arriving right after: rebuilt from the ledger alone, counters would not see the
    // running ones and admit the budget a second time.
    const second = Array.from({ length: 40 }, (_, i) => fire(i, PARAMS));
    await Promise.all([...first, ...second]);
    expect(outcomes.filter((o) => o === 'unavailable').length).toBeGreaterThan(0);
    // Once rebuilt, the counters hold what the ledger has: the budget is spent, refused as such.
    const until = Date.now() + 20_000;
    let refusedAsSpent = false;
    while (!refusedAsSpent && Date.now() < until) {
      try {
        await client(live[0] as Server, key).messages.create(PARAMS);
      } catch (error) {
        if (error instanceof Anthropic.RateLimitError) refusedAsSpent = true;
        else await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    expect(refusedAsSpent).toBe(true);
    const rows = (await rowsOfUser(setup.db, 'flushed')).filter((r) => r.status === 200);
    const spent = rows.reduce((sum, r) => sum + r.cost_micro, 0);
    expect(spent).toBeLessThanOrEqual(budget);
    expect(spent).toBeGreaterThanOrEqual(budget - worstCase(SLOW));
  }, 60_000);
});

describe('one instance on SQLite', () => {
  let fake: FakeUpstream;
  let setup: Setup;
  const servers: Server[] = [];
  beforeAll(async () => {
    fake = await startFakeUpstream({ latencyMs: 40 });
    setup = await install(fake, {});
    servers.push(await serve(setup.dir, setup.env));
  }, 30_000);
  afterAll(async () => {
    for (const s of servers)
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await Promise.all(servers.map((s) => exited(s.child)));
    await setup?.close();
    await fake?.close();
  });

  it('admits at most K of 300 concurrent requests, then fills the budget to within one worst case', async () => {
    await budgetRace(servers, setup, fake);
  }, 60_000);

  it('refuses a second server on the same SQLite file, saying to use PostgreSQL and Redis', async () => {
    const second = spawnCli(setup.dir, { ...setup.env, TOLLGATE_REDIS_URL: 'redis://127.0.0.1:9' }, [
      'serve',
      '--port',
      '0',
    ]);
    const output = collect(second);
    expect(await exited(second)).not.toBe(0);
    expect(output()).toMatch(/SQLite serves one instance; to run several, use PostgreSQL and Redis/);
    expect(output()).not.toContain('listening on');
  });
});

describe.skipIf(!PG_URL)('PostgreSQL without Redis', () => {
  it('refuses a second server, saying to set TOLLGATE_REDIS_URL (the first serves)', async () => {
    const fake = await startFakeUpstream();
    const schema = await createPgSchema(PG_URL ?? '');
    const setup = await install(fake, { TOLLGATE_DATABASE_URL: schema.url });
    const first = await serve(setup.dir, setup.env);
    try {
      const key = await issueKey(setup.services, 'solo', null);
      await new Promise((resolve) => setTimeout(resolve, 600));
      await expect(client(first, key).messages.create(PARAMS)).resolves.toMatchObject({ type: 'message' });
      const second = spawnCli(setup.dir, setup.env, ['serve', '--port', '0']);
      const output = collect(second);
      expect(await exited(second)).not.toBe(0);
      expect(output()).toMatch(/set TOLLGATE_REDIS_URL \(redis\.url\) on every one of them/);
      // CLI commands keep working beside the server.
      const cli = spawnCli(setup.dir, setup.env, ['user', 'list', '--json']);
      const listed = collect(cli);
      expect(await exited(cli)).toBe(0);
      expect(listed()).toContain('"solo"');
    } finally {
      first.child.kill('SIGKILL');
      await exited(first.child);
      await setup.close();
      await schema.drop();
      await fake.close();
    }
  }, 40_000);
});
