// Changes reach every instance within 1 s: three gateways on one PostgreSQL schema and one Redis, a
// key revoked, a user removed, a budget changed, a credential rotated and `credential use`, written by
// one instance's services or by the CLI beside them. Measured per instance from the moment the write
// returned to the first request that shows the change. The set-ups:
//   - as deployed: push (Redis pub/sub) plus the 250 ms poll;
//   - push alone (the poll set to a minute), so only the push can explain the result; then the push
//     connections cut (a negative control: the same probe does not see a change within 1.5 s) and back;
//   - push down (subscribers and announcements cut off, Redis serving everything else): the poll alone;
//   - Redis unreachable altogether: revocations and removed users by the poll alone.
// Each change has a positive control: before it, the probe shows the old state on every instance; after
// it, an untouched key still works everywhere. Redis sits behind a relay (test/helpers/tcp-proxy.ts)
// that cuts the connections a test names.
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { type Instances, startInstances } from '../helpers/instances.js';
import { createPgSchema, PG_URL, type PgSchema } from '../helpers/pg.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const REDIS_URL = process.env.TOLLGATE_TEST_REDIS_URL;
const BOUND_MS = 1000;
/** Three instances with their migrations, on a machine shared with the rest of the suite. */
const SETUP_MS = 120_000;
const TEST_MS = 60_000;
const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'hi' }],
};
const admin = { actor: 'test-admin' };

/** How a change is written: through one instance's services, or by the CLI beside the servers. */
interface Writer {
  revokeKey(id: string): Promise<void>;
  removeUser(name: string): Promise<void>;
  userBudget(name: string, usd: string): Promise<void>;
  rotate(name: string, secret: string): Promise<void>;
  addCredential(name: string, secret: string): Promise<void>;
  use(name: string): Promise<void>;
}

function servicesWriter(set: Instances): Writer {
  const s = () => (set.list[0] as Instances['list'][number]).services;
  return {
    revokeKey: async (id) => void (await s().keys.revoke(admin, id)),
    removeUser: async (name) => void (await s().users.remove(admin, name)),
    userBudget: async (name, usd) =>
      void (await s().budgets.set(
        admin,
        await s().budgets.resolve('user', name),
        'month',
        Math.round(Number(usd) * 1e6),
      )),
    rotate: async (name, secret) => void (await s().credentials.rotate(admin, name, secret, true)),
    addCredential: async (name, secret) =>
      void (await s().credentials.add(admin, { name, provider: 'anthropic', secret, validate: true })),
    use: async (name) => void (await s().credentials.use(admin, name)),
  };
}

function cliWriter(set: Instances): Writer {
  const run = async (argv: string[], stdin = '') => {
    const result = await runCli(argv, set.env, stdin);
    if (result.code !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr}`);
  };
  return {
    revokeKey: (id) => run(['key', 'revoke', id]),
    removeUser: (name) => run(['user', 'remove', name]),
    userBudget: (name, usd) => run(['budget', 'set', '--user', name, '--period', 'month', '--usd', usd]),
    rotate: (name, secret) => run(['credential', 'rotate', name], secret),
    addCredential: (name, secret) => run(['credential', 'add', name, '--provider', 'anthropic'], secret),
    use: (name) => run(['credential', 'use', name]),
  };
}

/**
 * Probes every instance (one request at a time, so the fake's last record is the probe's) until each
 * shows the change or `deadlineMs` passes; the milliseconds each took, or null where it never did.
 */
async function reach(
  set: Instances,
  probe: (i: number) => Promise<boolean>,
  deadlineMs = 3 * BOUND_MS,
): Promise<Array<number | null>> {
  const start = Date.now();
  const took: Array<number | null> = set.list.map(() => null);
  while (Date.now() - start <= deadlineMs) {
    for (let i = 0; i < set.list.length; i++) {
      if (took[i] === null && (await probe(i))) took[i] = Date.now() - start;
    }
    if (took.every((t) => t !== null)) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  return took;
}

function expectWithinBound(took: Array<number | null>, what: string, measured: Record<string, number>): void {
  const worst = took.some((t) => t === null) ? Number.POSITIVE_INFINITY : Math.max(...(took as number[]));
  measured[what] = worst;
  expect(took, `${what} reached every instance within ${BOUND_MS} ms`).toEqual(
    took.map(() => expect.any(Number)),
  );
  expect(worst, what).toBeLessThanOrEqual(BOUND_MS);
}

const outcome = (client: Anthropic) =>
  client.messages.create(PARAMS).then(
    () => 'ok' as const,
    (e: unknown) =>
      e instanceof Anthropic.AuthenticationError
        ? ('refused' as const)
        : e instanceof Anthropic.RateLimitError && /budget/.test(String(e))
          ? ('budget' as const)
          : e instanceof Anthropic.APIError && e.status === 503
            ? ('unavailable' as const)
            : ('error' as const),
  );

/** The five changes, each with its positive control, timed on every instance. */
async function exerciseChanges(set: Instances, writer: Writer, tag: string): Promise<Record<string, number>> {
  const s = (set.list[0] as Instances['list'][number]).services;
  const measured: Record<string, number> = {};
  const on = (i: number) => set.list[i] as Instances['list'][number];
  const keyOf = async (user: string) => {
    if (!(await s.users.list()).some((u) => u.name === user))
      await s.users.add(admin, { name: user, team: null, monthlyBudgetMicro: null });
    return s.keys.issue(admin, { user, policy: {}, credential: null });
  };
  const everywhere = async (key: string, expected: string) => {
    for (let i = 0; i < set.list.length; i++)
      expect(await outcome(on(i).client(key)), `instance ${i}`).toBe(expected);
  };
  const control = await keyOf(`control-${tag}`);

  // A revoked key: every instance refuses it.
  const doomed = await keyOf(`holder-${tag}`);
  await everywhere(doomed.key, 'ok');
  await writer.revokeKey(doomed.id);
  expectWithinBound(
    await reach(set, async (i) => (await outcome(on(i).client(doomed.key))) === 'refused'),
    'key revoked',
    measured,
  );
  await everywhere(control.key, 'ok');

  // A removed user: their key is refused everywhere.
  const leaver = await keyOf(`leaver-${tag}`);
  await everywhere(leaver.key, 'ok');
  await writer.removeUser(`leaver-${tag}`);
  expectWithinBound(
    await reach(set, async (i) => (await outcome(on(i).client(leaver.key))) === 'refused'),
    'user removed',
    measured,
  );
  await everywhere(control.key, 'ok');

  // A budget lowered to one micro-dollar: every instance refuses the next request for it.
  const spender = await keyOf(`spender-${tag}`);
  await everywhere(spender.key, 'ok');
  await writer.userBudget(`spender-${tag}`, '0.000001');
  expectWithinBound(
    await reach(set, async (i) => (await outcome(on(i).client(spender.key))) === 'budget'),
    'budget changed',
    measured,
  );
  await everywhere(control.key, 'ok');

  // A rotated credential: every instance sends the new secret upstream.
  const usesSecret = async (i: number, secret: string) => {
    await on(i).client(control.key).messages.create(PARAMS);
    return set.fake.served.at(-1)?.apiKey === secret;
  };
  const credential = current.name;
  for (let i = 0; i < set.list.length; i++) expect(await usesSecret(i, current.secret)).toBe(true);
  const rotated = canaryAnthropicKey();
  await writer.rotate(credential, rotated);
  expectWithinBound(await reach(set, (i) => usesSecret(i, rotated)), 'credential rotated', measured);
  current.secret = rotated;

  // `credential use`: every instance switches to the chosen credential.
  const second = canaryAnthropicKey();
  await writer.addCredential(`${credential}-second`, second);
  for (let i = 0; i < set.list.length; i++) expect(await usesSecret(i, rotated)).toBe(true);
  await writer.use(`${credential}-second`);
  expectWithinBound(await reach(set, (i) => usesSecret(i, second)), 'credential use', measured);
  return measured;
}

/** The org credential each set-up starts with (added before the instances cache anything). */
const current = { name: '', secret: '' };

async function setUp(tag: string, redisUrl: string | undefined, changePollMs?: number) {
  const schema = await createPgSchema(PG_URL as string);
  const set = await startInstances({
    count: 3,
    databaseUrl: schema.url,
    ...(redisUrl === undefined ? {} : { redisUrl }),
    ...(changePollMs === undefined ? {} : { changePollMs }),
  });
  current.secret = canaryAnthropicKey();
  current.name = `org-${tag}`;
  await (set.list[0] as Instances['list'][number]).services.credentials.add(admin, {
    name: current.name,
    provider: 'anthropic',
    secret: current.secret,
    validate: true,
  });
  // The credential's own change must reach the instances before the first probe relies on it.
  for (const instance of set.list) await instance.gateway.refresh();
  return { schema, set };
}

async function waitForPush(set: Instances, state: string, ms = 10_000): Promise<void> {
  const start = Date.now();
  while (!set.list.every((i) => i.gateway.pushState() === state)) {
    if (Date.now() - start > ms) throw new Error(`push not ${state} on every instance within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!PG_URL || !REDIS_URL)('changes reach every instance within 1 s (PostgreSQL + Redis)', () => {
  describe('as deployed: push and the 250 ms poll', () => {
    let schema: PgSchema;
    let set: Instances;
    beforeAll(async () => {
      ({ schema, set } = await setUp('deployed', REDIS_URL));
      await waitForPush(set, 'subscribed');
    }, SETUP_MS);
    afterAll(async () => {
      await set?.close();
      await schema?.drop();
    });

    it(
      'written through one instance: every change reaches all three within 1 s',
      async () => {
        const measured = await exerciseChanges(set, servicesWriter(set), 'svc');
        console.info('push + poll, written by an instance (worst of 3 instances, ms):', measured);
      },
      TEST_MS,
    );
  });

  describe('push alone (poll once a minute)', () => {
    let schema: PgSchema;
    let set: Instances;
    let proxy: TcpProxy;
    beforeAll(async () => {
      proxy = await redisProxy();
      ({ schema, set } = await setUp('pushonly', `redis://127.0.0.1:${proxy.port}`, 60_000));
      await waitForPush(set, 'subscribed');
    }, SETUP_MS);
    afterAll(async () => {
      await set?.close();
      await schema?.drop();
      await proxy?.close();
    });

    it(
      'written by the CLI beside the servers: every change reaches all three within 1 s',
      async () => {
        const measured = await exerciseChanges(set, cliWriter(set), 'cli');
        console.info('push alone, written by the CLI (worst of 3 instances, ms):', measured);
      },
      TEST_MS,
    );

    it(
      'push cut: a revocation is not seen within 1.5 s (control); push back: it is applied, and push works again',
      async () => {
        const s = (set.list[0] as Instances['list'][number]).services;
        await s.users.add(admin, { name: 'cut', team: null, monthlyBudgetMicro: null });
        const first = await s.keys.issue(admin, { user: 'cut', policy: {}, credential: null });
        const second = await s.keys.issue(admin, { user: 'cut', policy: {}, credential: null });
        await cacheEverywhere(set, [first.key, second.key]);
        proxy.block(PUSH_CONNECTIONS);
        await waitForPush(set, 'down');
        // The write itself succeeds although its announcement cannot be sent.
        await cliWriter(set).revokeKey(first.id);
        const unseen = await reach(
          set,
          async (i) => (await outcome(on(set, i).client(first.key))) === 'refused',
          1500,
        );
        expect(unseen).toEqual([null, null, null]);

        // Back: each instance reads the feed when its subscription is re-established.
        proxy.unblock();
        await waitForPush(set, 'subscribed');
        const caughtUp = await reach(
          set,
          async (i) => (await outcome(on(set, i).client(first.key))) === 'refused',
        );
        expect(caughtUp.every((t) => t !== null && t <= BOUND_MS)).toBe(true);
        await cliWriter(set).revokeKey(second.id);
        const measured: Record<string, number> = {};
        expectWithinBound(
          await reach(set, async (i) => (await outcome(on(set, i).client(second.key))) === 'refused'),
          'key revoked after the push came back',
          measured,
        );
      },
      TEST_MS,
    );
  });

  describe('push down (subscribers and announcements cut off; Redis serves the rest): the 250 ms poll alone', () => {
    let schema: PgSchema;
    let set: Instances;
    let proxy: TcpProxy;
    beforeAll(async () => {
      proxy = await redisProxy();
      ({ schema, set } = await setUp('pushdown', `redis://127.0.0.1:${proxy.port}`));
      await waitForPush(set, 'subscribed');
      proxy.block(PUSH_CONNECTIONS);
      await waitForPush(set, 'down');
    }, SETUP_MS);
    afterAll(async () => {
      await set?.close();
      await schema?.drop();
      await proxy?.close();
    });

    it(
      'written by the CLI (whose announcements fail): every change reaches all three within 1 s',
      async () => {
        const measured = await exerciseChanges(set, cliWriter(set), 'down');
        console.info('poll alone, push cut off (worst of 3 instances, ms):', measured);
        expect(set.list.map((i) => i.gateway.pushState())).toEqual(['down', 'down', 'down']);
      },
      TEST_MS,
    );
  });

  describe('Redis unreachable altogether: the 250 ms poll alone', () => {
    let schema: PgSchema;
    let set: Instances;
    let proxy: TcpProxy;
    beforeAll(async () => {
      proxy = await redisProxy();
      ({ schema, set } = await setUp('noredis', `redis://127.0.0.1:${proxy.port}`));
      await waitForPush(set, 'subscribed');
    }, SETUP_MS);
    afterAll(async () => {
      await set?.close();
      await schema?.drop();
      await proxy?.close();
    });

    it(
      'a revoked key and a removed user are refused by all three within 1 s; an untouched key is not refused',
      async () => {
        const s = (set.list[0] as Instances['list'][number]).services;
        await s.users.add(admin, { name: 'stays', team: null, monthlyBudgetMicro: null });
        await s.users.add(admin, { name: 'goes', team: null, monthlyBudgetMicro: null });
        const control = await s.keys.issue(admin, { user: 'stays', policy: {}, credential: null });
        const revoked = await s.keys.issue(admin, { user: 'stays', policy: {}, credential: null });
        const removed = await s.keys.issue(admin, { user: 'goes', policy: {}, credential: null });
        await cacheEverywhere(set, [control.key, revoked.key, removed.key]);
        await proxy.down();
        await waitForPush(set, 'down');
        const measured: Record<string, number> = {};
        await cliWriter(set).revokeKey(revoked.id);
        expectWithinBound(
          await reach(set, async (i) => (await outcome(on(set, i).client(revoked.key))) === 'refused'),
          'key revoked',
          measured,
        );
        await cliWriter(set).removeUser('goes');
        expectWithinBound(
          await reach(set, async (i) => (await outcome(on(set, i).client(removed.key))) === 'refused'),
          'user removed',
          measured,
        );
        // The refusals are the changes', not Redis's: the untouched key is not refused. (With budgets kept
        // in Redis it is not served either: they fail closed with a 503 while Redis is away.)
        for (let i = 0; i < set.list.length; i++)
          expect(['ok', 'unavailable']).toContain(await outcome(on(set, i).client(control.key)));
        console.info('poll alone, Redis unreachable (worst of 3 instances, ms):', measured);
      },
      TEST_MS,
    );
  });
});

/** The Redis connections that carry pushed changes (connection names set by src/changes/push.ts). */
const PUSH_CONNECTIONS = /tollgate-(subscribe|publish)/;

async function redisProxy(): Promise<TcpProxy> {
  const redis = new URL(REDIS_URL as string);
  return startTcpProxy(redis.hostname, Number(redis.port || 6379));
}

const on = (set: Instances, i: number) => set.list[i] as Instances['list'][number];

/** Every instance has applied the changes so far and holds `keys` in its cache, as under traffic. */
async function cacheEverywhere(set: Instances, keys: string[]): Promise<void> {
  // A key loaded while a change is being applied is not cached: apply them all first.
  for (const instance of set.list) await instance.gateway.refresh();
  await new Promise((r) => setTimeout(r, 100));
  for (let round = 0; round < 2; round++)
    for (const instance of set.list)
      for (const key of keys) expect(await outcome(instance.client(key))).toBe('ok');
}
