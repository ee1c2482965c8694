// Budgets exact across instances, with real processes: three `tollgate serve` (the compiled CLI) on
// one PostgreSQL schema and one Redis database, driven by the official SDK. A budget worth K requests
// admits at most K of 300 concurrent requests spread over the three and is then used to within one
// worst case, never beyond (the ledger and the fake upstream's billing agree); `kill -9` of one
// instance under load loses no acknowledged usage record and leaks no reservation past its expiry;
// Redis emptied mid-run (FLUSHDB, as a restarted Redis) overspends nothing. With budgets large enough
// for leases (a busy key's requests admitted in process on chunks of its shared limits): a budget worth
// K requests is leased while far and admits one by one near it, at most K and to within one worst case;
// once the leases end, Redis counts exactly what the ledger holds; `kill -9` of a lease holder gives
// back, after its hold's expiry, only what it did not spend. The same budget check on SQLite for one
// instance; a second server on one SQLite file, or on PostgreSQL without Redis, is refused (each beside
// a server that serves).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { periodStart } from '../../src/budgets/periods.js';
import { loadSpend } from '../../src/budgets/spend.js';
import { loadConfig } from '../../src/config/load.js';
import type { Db } from '../../src/db/connect.js';
import { initInstallation } from '../../src/install/installation.js';
import { costMicro, worstCaseMicro } from '../../src/pricing/cost.js';
import { inputTokenUpperBound } from '../../src/pricing/input-bound.js';
import { createPriceBook } from '../../src/pricing/models.js';
import { SLICE_MS } from '../../src/ratelimit/sliced-minutes.js';
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
/** How long an in-flight slot lives unrenewed: the same two, plus a 60 s margin (gateway.ts). */
const SLOT_TTL_MS = TIMEOUT_MS + TIMEOUT_MS + 60_000;
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

/** A request whose answer is shorter than its max_tokens: its output charge is corrected at its finish. */
const SHORT = {
  ...PARAMS,
  messages: [{ role: 'user' as const, content: 'scale [[fake output_tokens=25]]' }],
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

/** Three servers on one PostgreSQL schema and one Redis database (this file's own, emptied first). */
interface Three {
  fake: FakeUpstream;
  setup: Setup;
  redis: Redis;
  servers: Server[];
  dropSchema: () => Promise<void>;
}

/**
 * Starts three servers that serve at once (a server without Redis would be refused beside them). What is
 * started goes into `into` as it starts, so that `stopThree` stops it even when a later step failed.
 */
async function startThree(into: Partial<Three>): Promise<Three> {
  const fake = await startFakeUpstream({ latencyMs: 40 });
  into.fake = fake;
  const schema = await createPgSchema(PG_URL ?? '');
  into.dropSchema = schema.drop;
  const redisUrl = new URL(REDIS_URL ?? '');
  redisUrl.pathname = `/${REDIS_DB}`;
  // Bounded by the tests, not by ioredis's 1 s timer: a watcher's command answered while this process
  // was busy with hundreds of requests would read as timed out.
  const redis = await connectRedis(redisUrl.toString(), {
    name: 'tollgate-test-scale',
    callerTimeouts: true,
  });
  into.redis = redis;
  await redis.flushdb();
  const setup = await install(fake, {
    TOLLGATE_DATABASE_URL: schema.url,
    TOLLGATE_REDIS_URL: redisUrl.toString(),
  });
  into.setup = setup;
  const servers: Server[] = [];
  into.servers = servers;
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
        if (!(error instanceof Anthropic.APIError && error.status === 503) || Date.now() > until) throw error;
        return false;
      });
    if (answered) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { fake, setup, redis, servers, dropSchema: schema.drop };
}

async function stopThree(three: Partial<Three>): Promise<void> {
  const servers = three.servers ?? [];
  for (const s of servers)
    if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  await Promise.all(servers.map((s) => exited(s.child)));
  await three.redis?.flushdb();
  three.redis?.disconnect();
  await three.setup?.close();
  await three.dropSchema?.();
  await three.fake?.close();
}

describe.skipIf(!PG_URL || !REDIS_URL)('three instances on PostgreSQL + Redis', () => {
  const three: Partial<Three> = {};
  let fake: FakeUpstream;
  let setup: Setup;
  let redis: Redis;
  const servers: Server[] = [];
  /** What the org's all-time counter in Redis holds beyond the ledger's settled spend: its reservations. */
  const orgReserved = async () =>
    Number((await redis.hget(`tollgate:budget:${setup.orgId}:c:org:${setup.orgId}`, 't')) ?? 0) -
    (await loadSpend(setup.db.kysely, 'org', setup.orgId, 'total', 0));

  beforeAll(async () => {
    ({ fake, setup, redis } = await startThree(three));
    servers.push(...(three.servers ?? []));
  }, 60_000);
  afterAll(() => stopThree(three));

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

/**
 * Rate limits high enough never to bind, but set: a lease then takes a chunk of every one of them
 * (requests and tokens in the current slice, slots in the in-flight set) besides its budget hold.
 */
const FAR_LIMITS = { rpm: 100_000, inputTpm: 100_000_000, outputTpm: 100_000_000, concurrency: 10_000 };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A key with FAR_LIMITS and a monthly budget, for a user of its own: the key and its id. */
async function issueLimitedKey(s: Services, user: string, monthlyBudgetMicro: number | null) {
  await s.users.add(admin, { name: user, team: null, monthlyBudgetMicro: null });
  const issued = await s.keys.issue(admin, { user, policy: { monthlyBudgetMicro, ...FAR_LIMITS } });
  return { key: issued.key, id: issued.id };
}

/**
 * One request to each server, so that each has the key in its cache before a burst: requests of a key a
 * server has not cached yet each load an entry of their own, and a lease ends whenever the entry it was
 * taken with is not the request's (leases.ts), so a cold burst takes and ends lease after lease instead
 * of using one. Answers how many were sent.
 */
async function warmKey(servers: readonly Server[], key: string, params: typeof PARAMS = PARAMS) {
  await Promise.all(servers.map((server) => client(server, key).messages.create(params)));
  return servers.length;
}

/** The Redis keys a gateway key's requests count in (the default `tollgate:` prefix). */
function redisKeys(setup: Setup, keyId: string) {
  const budget = `tollgate:budget:${setup.orgId}:`;
  return {
    /** The budget book's keys (reservations and holds are `r:<id>`). */
    budget,
    /** The key scope's counters: field `m<month start>` is this month's settled + held spend. */
    counter: `${budget}c:key:${keyId}`,
    deadlines: `${budget}deadlines`,
    inFlight: `tollgate:rl:{${keyId}}:flight`,
    requests: `tollgate:rl:{${keyId}}:req5s`,
    input: `tollgate:rl:{${keyId}}:in`,
    output: `tollgate:rl:{${keyId}}:out`,
  };
}
type RedisKeys = ReturnType<typeof redisKeys>;

interface Hold {
  readonly id: string;
  /** `o` open, `x` expired (swept: what it held was given back). */
  readonly state: string;
  /** The spend reported out of it so far. */
  readonly spent: number;
}

/**
 * The leases' holds on the key's budget: reservation hashes that have the fields a lease's hold adds
 * (`s`, the spend reported out of it) and that reserve on the key's counter.
 */
async function leaseHolds(redis: Redis, k: RedisKeys): Promise<Hold[]> {
  const names = await redis.keys(`${k.budget}r:*`);
  const pipeline = redis.pipeline();
  for (const name of names) pipeline.hmget(name, 'st', 's', 'k');
  const replies = (await pipeline.exec()) ?? [];
  const holds: Hold[] = [];
  names.forEach((name, i) => {
    const [state, spent, lines] = (replies[i]?.[1] ?? []) as (string | null)[];
    if (spent === null || spent === undefined || !lines?.includes(`${k.counter}\t`)) return;
    holds.push({ id: name.slice(`${k.budget}r:`.length), state: state ?? '', spent: Number(spent) });
  });
  return holds;
}

/** The leases' slots in the key's in-flight set (members `<hold id>#<i>`), with their expiry (Redis ms). */
async function leaseSlots(redis: Redis, k: RedisKeys): Promise<Map<string, number>> {
  const flat = await redis.zrange(k.inFlight, 0, -1, 'WITHSCORES');
  const slots = new Map<string, number>();
  for (let i = 0; i < flat.length; i += 2) {
    const member = flat[i] as string;
    if (member.includes('#')) slots.set(member, Number(flat[i + 1]));
  }
  return slots;
}

/** What Redis showed of the key's leases while `work` ran: the holds and slots seen, the spend reported. */
async function watchLeases<T>(redis: Redis, k: RedisKeys, work: Promise<T>) {
  const seen = { holds: new Set<string>(), slots: 0, reported: 0 };
  let done = false;
  const watching = (async () => {
    while (!done) {
      for (const hold of await leaseHolds(redis, k)) {
        seen.holds.add(hold.id);
        seen.reported = Math.max(seen.reported, hold.spent);
      }
      seen.slots = Math.max(seen.slots, (await leaseSlots(redis, k)).size);
      await sleep(10);
    }
  })();
  try {
    return { result: await work, ...seen };
  } finally {
    done = true;
    await watching;
  }
}

/**
 * Waits until no lease holds anything on the key: its holds closed (given back and deleted) or expired
 * (`x`), and, with `slots`, its slots freed. A lease ends 1 s after its last use; its final script then
 * gives everything back.
 */
async function leasesEnded(redis: Redis, k: RedisKeys, options: { slots: boolean; within: number }) {
  const until = Date.now() + options.within;
  for (;;) {
    const open = (await leaseHolds(redis, k)).filter((h) => h.state === 'o');
    const slots = options.slots ? (await leaseSlots(redis, k)).size : 0;
    if (open.length === 0 && slots === 0) return;
    if (Date.now() > until)
      throw new Error(`leases did not end: ${open.length} holds open, ${slots} slots held`);
    await sleep(100);
  }
}

/** A refusal of a spent budget (anything else is unexpected). */
function expectSpendLimit(error: unknown, servers: readonly Server[]): void {
  if (!(error instanceof Anthropic.RateLimitError)) throw unexpected(error, servers);
  expect((error.error as { error?: { details?: { error_code?: string } } }).error?.details?.error_code).toBe(
    'enforced_spend_limit_reached',
  );
}

/** `n` requests at once, spread round-robin over the servers. */
function wave(servers: readonly Server[], key: string, n: number, params: typeof PARAMS = PARAMS) {
  return Promise.allSettled(
    Array.from({ length: n }, (_, i) =>
      client(servers[i % servers.length] as Server, key).messages.create(params),
    ),
  );
}

/** What the fake upstream billed for the Messages answers it served from `from` on (its own usage figures). */
function billed(fake: FakeUpstream, from: number): { answers: number; micro: number } {
  const price = createPriceBook({}).lookup(MODEL);
  if (!price) throw new Error('unpriced');
  const answers = fake.served.slice(from).filter((s) => s.path === '/v1/messages' && s.status === 200);
  let micro = 0;
  for (const s of answers) {
    const u = s.usage;
    if (!u) throw new Error(`no usage for ${s.requestId}`);
    micro += costMicro(price, {
      inputTokens: u.input_tokens,
      outputTokens: u.output_tokens,
      cacheWrite5mTokens: u.cache_creation_5m,
      cacheWrite1hTokens: u.cache_creation_1h,
      cacheReadTokens: u.cache_read,
      webSearchRequests: u.web_search_requests,
    });
  }
  return { answers: answers.length, micro };
}

/** The ledger's Messages rows of one key. */
async function rowsOfKey(db: Db, keyId: string) {
  return (await ledgerRows(db)).filter((r) => r.key_id === keyId);
}

// Leases (gateway/leases.ts): for a busy key, each instance takes a chunk of every shared limit at once
// and admits the key's requests in process. The budgets here are large enough for that (the tests above
// stay one by one); each test first proves from Redis that leases were taken.
describe.skipIf(!PG_URL || !REDIS_URL)('leases: three instances on PostgreSQL + Redis', () => {
  const three: Partial<Three> = {};
  let fake: FakeUpstream;
  let setup: Setup;
  let redis: Redis;
  const servers: Server[] = [];
  /** The cost of one PARAMS answer (the warm-up's). */
  let unit = 0;

  beforeAll(async () => {
    ({ fake, setup, redis } = await startThree(three));
    servers.push(...(three.servers ?? []));
    unit = (await ledgerRows(setup.db)).find((r) => r.status === 200)?.cost_micro ?? 0;
  }, 60_000);
  afterAll(() => stopThree(three));

  it('a budget far, then near: leased while far, one by one near it, at most K of it and within one worst case', async () => {
    expect(unit).toBeGreaterThan(0);
    // Worth K answers: a chunk of it is at most 1 % (15 answers), taken only while 16 chunks still fit.
    const K = 1_500;
    const budget = K * unit;
    const chunk = Math.floor(budget / 100);
    const room = 16 * chunk;
    const worst = worstCase();
    const { key, id } = await issueLimitedKey(setup.services, 'far-then-near', budget);
    const k = redisKeys(setup, id);
    await sleep(600);
    const servedFrom = fake.served.length;
    let admitted = await warmKey(servers, key);
    const left = async () =>
      budget - (await rowsOfKey(setup.db, id)).reduce((sum, r) => sum + r.cost_micro, 0);
    const seen = new Set<string>();
    /** A wave of 300 watched in Redis: how many it admitted, and the lease holds it saw first. */
    const watchedWave = async () => {
      const watched = await watchLeases(redis, k, wave(servers, key, 300));
      let admittedNow = 0;
      for (const r of watched.result) {
        if (r.status === 'fulfilled') admittedNow++;
        else expectSpendLimit(r.reason, servers);
      }
      admitted += admittedNow;
      const fresh = [...watched.holds].filter((hold) => !seen.has(hold));
      for (const hold of watched.holds) seen.add(hold);
      return { ...watched, admitted: admittedNow, fresh };
    };
    // Far: waves of 300 until the budget refuses (the last one starts far and ends near it). Leases are
    // taken from the first (else this proves nothing of them): holds on the key's counter, spend
    // reported out of them, slots in its in-flight set.
    const first = await watchedWave();
    expect(first.admitted).toBe(300);
    expect(first.holds.size, 'no lease hold seen').toBeGreaterThan(0);
    expect(first.reported, 'no spend reported out of a hold').toBeGreaterThan(0);
    expect(first.slots, 'no lease slot seen').toBeGreaterThan(0);
    for (let waves = 1, last = first; last.admitted === 300; waves++) {
      expect(waves, 'the budget never refused').toBeLessThan(2 * (K / 300) + 2);
      last = await watchedWave();
    }
    // Near: once less than 16 chunks are left (and the leases gave back what they held), no lease is
    // taken any more: one by one, waves of 300 until one admits nothing…
    let nearWaves = 0;
    for (let waves = 0, admittedLast = 1; admittedLast > 0; waves++) {
      expect(waves, 'the budget never refused a whole wave').toBeLessThan(10);
      await leasesEnded(redis, k, { slots: true, within: 5_000 });
      const near = (await left()) <= room;
      const last = await watchedWave();
      admittedLast = last.admitted;
      if (!near) continue;
      nearWaves++;
      expect(last.fresh, 'a lease taken near the limit').toEqual([]);
      expect(last.slots, 'a lease taken near the limit').toBe(0);
    }
    expect(nearWaves).toBeGreaterThan(0);
    // …and a request alone is refused too: what is left is less than its worst case.
    const alone = await client(servers[0] as Server, key)
      .messages.create(PARAMS)
      .then(
        () => null,
        (error: unknown) => error,
      );
    expectSpendLimit(alone, servers);
    expect(admitted).toBeLessThanOrEqual(K);
    const rows = (await rowsOfKey(setup.db, id)).filter((r) => r.status === 200);
    const spent = rows.reduce((sum, r) => sum + r.cost_micro, 0);
    expect(rows).toHaveLength(admitted);
    expect(spent).toBeLessThanOrEqual(budget);
    expect(spent).toBeGreaterThanOrEqual(budget - worst);
    // The upstream's own billing agrees with the ledger: nothing served beyond what it holds.
    expect(billed(fake, servedFrom)).toEqual({ answers: rows.length, micro: spent });
  }, 90_000);

  it('once the leases end, the key counts in Redis exactly what the ledger holds: spend and requests', async () => {
    const { key, id } = await issueLimitedKey(setup.services, 'far', 1_000_000 * unit);
    const k = redisKeys(setup, id);
    await sleep(600);
    const sent = (await warmKey(servers, key)) + 600;
    const watched = await watchLeases(redis, k, wave(servers, key, 300, SHORT));
    const second = await wave(servers, key, 300, SHORT);
    for (const r of [...watched.result, ...second])
      if (r.status === 'rejected') throw unexpected(r.reason, servers);
    expect(watched.holds.size, 'no lease hold seen').toBeGreaterThan(0);
    expect(watched.slots, 'no lease slot seen').toBeGreaterThan(0);
    // Ended (idle 1 s, then their final scripts): no hold or reservation left, no slot.
    const until = Date.now() + 5_000;
    while (
      ((await redis.keys(`${k.budget}r:*`)).length > 0 || (await redis.zcard(k.inFlight)) > 0) &&
      Date.now() < until
    )
      await sleep(100);
    expect(await redis.keys(`${k.budget}r:*`)).toEqual([]);
    expect(await redis.zrange(k.inFlight, 0, -1)).toEqual([]);
    const rows = await rowsOfKey(setup.db, id);
    expect(rows.filter((r) => r.status === 200)).toHaveLength(sent);
    const spent = rows.reduce((sum, r) => sum + r.cost_micro, 0);
    expect(Number(await redis.hget(k.counter, `m${periodStart('month', Date.now())}`))).toBe(spent);
    expect(spent).toBe(
      await loadSpend(setup.db.kysely, 'key', id, 'month', periodStart('month', Date.now())),
    );
    // Every request counted once in the minute's slices (a chunk's unused requests went back)…
    const total = async (hash: string) =>
      Object.values(await redis.hgetall(hash)).reduce((sum, n) => sum + Number(n), 0);
    expect(await total(k.requests)).toBe(sent);
    // …and its tokens: each charge corrected to the answer's figures, a chunk's unused rest given back.
    expect(await total(k.input)).toBe(
      rows.reduce((sum, r) => sum + r.input_tokens + r.cache_write_5m_tokens + r.cache_write_1h_tokens, 0),
    );
    expect(await total(k.output)).toBe(rows.reduce((sum, r) => sum + r.output_tokens, 0));
  }, 60_000);

  it('kill -9 of a lease holder under load: its hold expires and gives back only what it did not spend', async () => {
    const { key, id } = await issueLimitedKey(setup.services, 'leaseholder', 1_000_000 * unit);
    const sweeper = await issueKey(setup.services, 'sweeper', null);
    const k = redisKeys(setup, id);
    await sleep(600);
    // With the load's own requests: every answer of the key then costs the same.
    await warmKey(servers, key, SLOW);
    const victim = servers[2] as Server;
    const live = servers.slice(0, 2);
    const acknowledged: string[] = [];
    const failed: unknown[] = [];
    let victimRunning = 0;
    /** Whether it was answered. */
    const send = async (server: Server): Promise<boolean> => {
      if (server === victim) victimRunning++;
      try {
        const { response } = await client(server, key).messages.create(SLOW).withResponse();
        acknowledged.push(response.headers.get('x-tollgate-request-id') ?? '');
        return true;
      } catch (error) {
        // Requests to the killed instance fail: not acknowledged. The others must not.
        if (server !== victim) failed.push(error);
        return false;
      } finally {
        if (server === victim) victimRunning--;
      }
    };
    // Its burst starts a 5 s slice: the chunks its lease takes during the burst then serve until the
    // kill, so that what the victim spent leaves its hold through the spend reports alone (a chunk, or
    // the slice's end, would carry it too).
    await sleep(SLICE_MS - (Date.now() % SLICE_MS) + 50);
    const sliceEnds = Date.now() - (Date.now() % SLICE_MS) + SLICE_MS;
    // The victim alone serves the key at first: the lease holds seen are its own.
    const burst = Array.from({ length: 100 }, () => send(victim));
    let victimHolds: Hold[] = [];
    const seenBy = Date.now() + 5_000;
    while (victimHolds.length === 0 && Date.now() < seenBy) {
      victimHolds = await leaseHolds(redis, k);
      await sleep(10);
    }
    expect(victimHolds.length, 'the victim took no lease').toBeGreaterThan(0);
    // A hold's id (like a slot's member) starts with its instance's id.
    const instance = (victimHolds[0] as Hold).id.split('.')[0] as string;
    const ofVictim = (holdOrSlot: string) => holdOrSlot.startsWith(`${instance}.`);
    // Then the other two serve it too, for 1.5 s: the load the victim dies in.
    const load = Array.from({ length: 200 }, async (_, i) => {
      await sleep(Math.floor(i / 2) * 15);
      await send(live[i % 2] as Server);
    });
    // The burst answered (and recorded), then a few more requests on what the lease has left, still
    // running when the victim is killed.
    expect((await Promise.all(burst)).filter((answered) => answered)).toHaveLength(burst.length);
    const last = Array.from({ length: 10 }, () => send(victim));
    await sleep(200);
    // Counted before its requests' connections break (which may be seen before its exit is).
    const runningAtKill = victimRunning;
    expect(Date.now(), 'the machine was too slow to kill within the slice').toBeLessThan(sliceEnds);
    victim.child.kill('SIGKILL');
    await exited(victim.child);
    const killedAt = Date.now();
    // What it held when it died (nothing of it changes after, but by expiry).
    const holdsAtKill = (await leaseHolds(redis, k)).filter((h) => ofVictim(h.id) && h.state === 'o');
    const slotsAtKill = [...(await leaseSlots(redis, k))].filter(([member]) => ofVictim(member));
    expect(holdsAtKill.length, 'the victim held no lease when killed').toBeGreaterThan(0);
    expect(slotsAtKill.length, 'the victim held no lease slot when killed').toBeGreaterThan(0);
    expect(runningAtKill, 'no request in flight on the victim when killed').toBeGreaterThan(0);
    const reported = Math.max(...holdsAtKill.map((h) => h.spent));
    expect(reported, 'no spend reported out of the hold before the kill').toBeGreaterThan(0);
    // Its holds live a reservation's TTL from their last renewal (every TTL / 3) or chunk: at least
    // two thirds of it from the kill (half, for a busy machine's late renewal).
    for (const hold of holdsAtKill) {
      const expiresAt = Number(await redis.zscore(k.deadlines, hold.id));
      expect(expiresAt, hold.id).toBeGreaterThanOrEqual(killedAt + TTL_MS / 2);
    }
    await Promise.all([...last, ...load]);
    if (failed.length > 0) throw unexpected(failed[0], servers);
    // Every acknowledged answer has its record in the ledger.
    const ids = new Set((await ledgerRows(setup.db)).map((r) => r.id));
    expect(acknowledged.filter((a) => !ids.has(a))).toEqual([]);
    // The dead instance's hold is still held (its requests might still run), never given back early…
    const holdOpen = async () =>
      (await leaseHolds(redis, k)).filter((h) => ofVictim(h.id) && h.state === 'o').map((h) => h.id);
    expect(await holdOpen()).not.toEqual([]);
    expect(Date.now() - killedAt).toBeLessThan(TTL_MS - 5_000);
    // …and expires once unrenewed for its time: swept by another instance's admission (or renewal).
    const deadline = killedAt + TTL_MS + 8_000;
    for (let i = 0; (await holdOpen()).length > 0 && Date.now() < deadline; i++) {
      await client(live[i % 2] as Server, sweeper).messages.create(PARAMS);
      await sleep(250);
    }
    expect(await holdOpen()).toEqual([]);
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(TTL_MS - 5_000);
    // The live instances' leases ended too (they gave back what they held): nothing is held any more.
    await leasesEnded(redis, k, { slots: false, within: 5_000 });
    const settledBy = Date.now() + 5_000;
    while ((await redis.zcard(k.deadlines)) > 0 && Date.now() < settledBy) await sleep(100);
    expect(await redis.zrange(k.deadlines, 0, -1)).toEqual([]);
    // Its slots are no longer renewed: each goes when its time is up, within a slot's TTL of the kill
    // (timeout + retry budget + 60 s: longer than this test waits, so they are still there).
    const slotsNow = [...(await leaseSlots(redis, k))];
    expect(slotsNow.filter(([member]) => !ofVictim(member))).toEqual([]);
    expect(slotsNow.filter(([member]) => ofVictim(member))).toEqual(slotsAtKill);
    for (const [member, expiresAt] of slotsAtKill)
      expect(expiresAt, member).toBeLessThanOrEqual(killedAt + SLOT_TTL_MS);
    // The counter holds the ledger's spend, never less; beyond it only answers the victim reported
    // spent (out of its hold) and had not committed when it died: whole answers, at most one per
    // request then in flight there.
    const answer = (await rowsOfKey(setup.db, id)).find((r) => r.status === 200)?.cost_micro ?? 0;
    const spent = (await rowsOfKey(setup.db, id)).reduce((sum, r) => sum + r.cost_micro, 0);
    const excess = Number(await redis.hget(k.counter, `m${periodStart('month', Date.now())}`)) - spent;
    expect(answer).toBeGreaterThan(0);
    expect(excess).toBeGreaterThanOrEqual(0);
    expect(excess % answer, `excess ${excess} is not whole answers of ${answer}`).toBe(0);
    expect(excess).toBeLessThanOrEqual(runningAtKill * worstCase(SLOW));
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
