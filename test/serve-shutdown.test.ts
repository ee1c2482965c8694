// Graceful shutdown of `tollgate serve`, as a real process driven by the official SDK against the fake
// upstream: SIGTERM during 32 open streams (/readyz 503 while draining, new connections refused, every
// stream completes, exit 0, every record exact); the grace's end cuts what is still open and records it at
// what it may have been billed, beside a stream that finishes in time; a second signal stops at once.
// And forward-only migrations: a database newer than the binary is refused, beside a normal start.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, type Redis } from '../src/redis/connect.js';
import { type FakeUpstream, startFakeUpstream } from './fake-upstream/index.js';
import { runCli } from './helpers/cli.js';
import { dropPrefix, keysUnder, REDIS_URL, testPrefix } from './helpers/redis-keys.js';
import { canaryAnthropicKey } from './helpers/secrets.js';
import { databaseDigest } from './helpers/snapshot.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'tollgate.js');
const MODEL = 'claude-haiku-4-5';

interface Running {
  child: ChildProcess;
  url: string;
  port: number;
  output: () => string;
  exited: Promise<number | null>;
}

function spawnCli(env: Record<string, string>, args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function serve(env: Record<string, string>): Promise<Running> {
  const { child, output, exited } = spawnCli(env, ['serve', '--port', '0']);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output()}`)), 30_000);
    const onData = () => {
      const match = /listening on (http:\/\/\S+)/.exec(output());
      if (match?.[1]) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    void exited.then((code) => reject(new Error(`server exited ${code}:\n${output()}`)));
  });
  return { child, url, port: Number(new URL(url).port), output, exited };
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A connection that has sent a request's first lines but not its end: an active, not idle, connection. */
function partialRequest(port: number, head: string): Promise<{ socket: Socket; answer: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`${head}\r\nHost: 127.0.0.1\r\n`);
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      const answer = new Promise<string>((done) => socket.once('close', () => done(text)));
      resolve({ socket, answer });
    });
    socket.once('error', reject);
  });
}

/** Whether a new TCP connection is refused now. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

interface Row {
  upstream_request_id: string | null;
  input_tokens: number;
  output_tokens: number;
  outcome: string;
  partial: number;
  estimated: number;
  stream: number;
  cost_micro: number;
}

function records(home: string): Row[] {
  const db = new SQLite(join(home, 'tollgate.db'), { readonly: true });
  try {
    return db.prepare(`select * from usage_records where endpoint = 'messages' order by at`).all() as Row[];
  } finally {
    db.close();
  }
}

const params = (content: string, maxTokens = 400) => ({
  model: MODEL,
  max_tokens: maxTokens,
  stream: true as const,
  messages: [{ role: 'user' as const, content }],
});

/** Streams to the end; says whether message_stop arrived, and the upstream's request id. */
async function streamToEnd(
  client: Anthropic,
  content: string,
  onStart: () => void,
  maxTokens?: number,
): Promise<{ stopped: boolean; requestId: string; events: number }> {
  const { data, response } = await client.messages.create(params(content, maxTokens)).withResponse();
  let stopped = false;
  let events = 0;
  for await (const event of data) {
    if (events++ === 0) onStart();
    if (event.type === 'message_stop') stopped = true;
  }
  return { stopped, requestId: response.headers.get('request-id') ?? '', events };
}

describe('tollgate serve: graceful shutdown', () => {
  let fake: FakeUpstream;
  let dir: string;
  let env: Record<string, string>;
  let key: string;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    dir = await mkdtemp(join(tmpdir(), 'tollgate-shutdown-'));
    env = {
      TOLLGATE_HOME: join(dir, 'home'),
      TOLLGATE_UPSTREAM_URL: fake.url,
      TOLLGATE_LOGGING_LEVEL: 'info',
    };
    await runCli(['init'], env);
    await runCli(['credential', 'add', 'org', '--provider', 'anthropic'], env, canaryAnthropicKey());
    await runCli(['user', 'add', 'alice'], env);
    key = (
      JSON.parse((await runCli(['key', 'issue', '--user', 'alice', '--json'], env)).stdout) as {
        key: string;
      }
    ).key;
  });
  afterAll(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('SIGTERM during 32 open streams: readyz 503, new connections refused, all 32 complete and recorded, exit 0', {
    timeout: 120_000,
  }, async () => {
    fake.reset();
    const before = records(env.TOLLGATE_HOME ?? '').length;
    const server = await serve(env);
    const client = new Anthropic({ apiKey: key, baseURL: server.url, maxRetries: 0, timeout: 60_000 });
    // Ready before the signal (the positive control of the 503 below).
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    let started = 0;
    // 26 events 150 ms apart: each stream runs ~4 s, well within the default 30 s grace.
    const streams = Array.from({ length: 32 }, (_v, i) =>
      streamToEnd(client, `s${i} [[fake output_tokens=20 fault=slow-stream delay_ms=150]]`, () => started++),
    );
    await until('32 streams open', () => started === 32);
    // Two connections with a request begun (active, not idle), then an idle keep-alive one (a request
    // answered, left open). The server accepts and reads connections in order: once the third is
    // answered, the first two requests have begun on the server's side too.
    const probe = await partialRequest(server.port, 'GET /readyz HTTP/1.1');
    const gatewayProbe = await partialRequest(server.port, 'POST /v1/messages HTTP/1.1');
    const idle = await partialRequest(server.port, 'GET /healthz HTTP/1.1');
    idle.socket.write('\r\n');
    await until('the idle connection to be answered', () => idle.socket.bytesRead > 0);
    let idleClosedAt = 0;
    void idle.answer.then(() => (idleClosedAt = Date.now()));
    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    await until('the drain to begin', () => server.output().includes('Shutting down'));
    // /readyz on a connection already open answers 503 (and closes it).
    probe.socket.write('\r\n');
    const answer = await probe.answer;
    expect(answer).toMatch(/^HTTP\/1\.1 503 /);
    expect(answer.toLowerCase()).toContain('connection: close');
    expect(answer).toContain('{"status":"unavailable","reason":"shutting down"}');
    // So does a new gateway request there, in Anthropic's shape (nothing is sent upstream).
    const body = JSON.stringify(params('late [[fake output_tokens=5]]'));
    gatewayProbe.socket.write(
      `x-api-key: ${key}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    const refusal = await gatewayProbe.answer;
    expect(refusal).toMatch(/^HTTP\/1\.1 503 /);
    expect(refusal).toContain('"type":"overloaded_error"');
    // A new connection is refused while the streams still run.
    let refusedWhileDraining = false;
    const deadline = Date.now() + 3_000;
    while (!refusedWhileDraining && Date.now() < deadline) refusedWhileDraining = await refused(server.port);
    expect(refusedWhileDraining).toBe(true);
    expect(started).toBe(32);
    const results = await Promise.all(streams);
    const drainedAfter = Date.now() - signalledAt;
    // The idle connection was closed while the streams still ran.
    expect(idleClosedAt).toBeGreaterThan(0);
    expect(idleClosedAt).toBeLessThan(signalledAt + drainedAfter);
    expect(await idle.answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(results.every((r) => r.stopped)).toBe(true);
    expect(await server.exited).toBe(0);
    // The streams outlived the signal: they were not cut, they finished.
    expect(drainedAfter).toBeGreaterThan(500);

    const rows = records(env.TOLLGATE_HOME ?? '').slice(before);
    expect(rows).toHaveLength(32);
    expect(fake.served).toHaveLength(32);
    const served = new Map(fake.served.map((s) => [s.requestId, s]));
    for (const result of results) {
      const row = rows.find((r) => r.upstream_request_id === result.requestId);
      const truth = served.get(result.requestId);
      expect(truth?.usage).toBeDefined();
      expect(row).toMatchObject({
        outcome: 'ok',
        partial: 0,
        estimated: 0,
        stream: 1,
        input_tokens: truth?.usage?.input_tokens,
        output_tokens: 20,
      });
      expect(truth?.usage?.output_tokens).toBe(20);
    }
    // Each phase is logged.
    const log = server.output();
    expect(log).toContain('shutdown: /readyz answers 503');
    expect(log).toContain('shutdown: every request finished and recorded');
    expect(log).toContain('shutdown: usage ledger flushed');
    expect(log).toContain('shutdown: done');
    expect(log).not.toContain(key);
  });

  it('when the grace ends, a stream still open is cut and recorded at what it may have been billed; one that ends in time is not', {
    timeout: 120_000,
  }, async () => {
    fake.reset();
    const before = records(env.TOLLGATE_HOME ?? '').length;
    const server = await serve({ ...env, TOLLGATE_SERVER_SHUTDOWN_GRACE_S: '2' });
    const client = new Anthropic({ apiKey: key, baseURL: server.url, maxRetries: 0, timeout: 60_000 });
    let started = 0;
    // The control: 9 events 60 ms apart (~0.5 s), well within the 2 s grace.
    const control = streamToEnd(
      client,
      'control [[fake output_tokens=3 fault=slow-stream delay_ms=60]]',
      () => started++,
    );
    // Never answered: held open past the grace; the reserved worst case is max_tokens = 300 of output.
    const held = client.messages.create(params('held [[fake fault=hang]]', 300)).then(
      () => 'answered',
      (error: unknown) => error,
    );
    // Answering, but for ~12 s: cut in the middle.
    const long = streamToEnd(
      client,
      'long [[fake output_tokens=200 fault=slow-stream delay_ms=60]]',
      () => started++,
      400,
    ).then(
      () => 'completed',
      (error: unknown) => error,
    );
    await until('both streams to begin', () => started === 2);
    await fake.waitForServed(1); // the held request reached the upstream (a hang is served when it starts)
    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    const controlled = await control;
    expect(controlled.stopped).toBe(true);
    const heldError = await held;
    const cutAfter = Date.now() - signalledAt;
    expect(heldError).toBeInstanceOf(Anthropic.APIError);
    expect((heldError as InstanceType<typeof Anthropic.APIError>).status).toBe(502);
    expect(await long).toBeInstanceOf(Error);
    // Cut when the grace ended, not before.
    expect(cutAfter).toBeGreaterThanOrEqual(1_900);
    expect(await server.exited).toBe(0);

    const rows = records(env.TOLLGATE_HOME ?? '').slice(before);
    expect(rows).toHaveLength(3);
    const served = fake.served;
    // The control: its exact usage.
    const controlRow = rows.find((r) => r.upstream_request_id === controlled.requestId);
    expect(controlRow).toMatchObject({ outcome: 'ok', partial: 0, estimated: 0, output_tokens: 3 });
    // The held request: sent, never answered → the reserved worst case (output = max_tokens).
    const heldRow = rows.find((r) => r.output_tokens === 300);
    expect(heldRow).toMatchObject({ outcome: 'connection_lost', partial: 1, estimated: 1 });
    expect(heldRow?.cost_micro).toBeGreaterThan(0);
    // The long stream: cut mid-way, recorded at a bound never below what the upstream sent (and billed).
    const longRow = rows.find((r) => r !== controlRow && r !== heldRow);
    const longServed = served.find((s) => s.stream && s.outputTokensSent > 3 && s.outcome !== 'complete');
    expect(longServed).toBeDefined();
    expect(longRow).toMatchObject({ partial: 1, estimated: 1 });
    expect(longRow?.output_tokens).toBeGreaterThanOrEqual(longServed?.usage?.output_tokens ?? Infinity);
    expect(longRow?.output_tokens).toBeLessThan(200);
    expect(server.output()).toContain('shutdown: grace ended; cutting the requests still open');
  });

  it('a second signal stops at once', { timeout: 60_000 }, async () => {
    fake.reset();
    const server = await serve(env); // the default 30 s grace
    const client = new Anthropic({ apiKey: key, baseURL: server.url, maxRetries: 0, timeout: 60_000 });
    const held = client.messages.create(params('held [[fake fault=hang]]', 300)).catch((e: unknown) => e);
    await fake.waitForServed(1);
    // The control: one signal alone leaves the server draining (the held request keeps it there).
    server.child.kill('SIGTERM');
    await until('the drain to begin', () => server.output().includes('Shutting down'));
    const stillRunning = await Promise.race([
      server.exited.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), 1_000)),
    ]);
    expect(stillRunning).toBe(true);
    const secondAt = Date.now();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(143);
    expect(Date.now() - secondAt).toBeLessThan(5_000);
    expect(server.output()).toContain('shutdown: second signal; exiting at once');
    expect(await held).toBeInstanceOf(Error);
  });
});

describe.skipIf(!REDIS_URL)(
  'tollgate serve with Redis: shutdown releases shared reservations and slots',
  () => {
    let fake: FakeUpstream;
    let dir: string;
    let env: Record<string, string>;
    let key: string;
    let redis: Redis;
    const prefix = testPrefix('shutdown');

    beforeAll(async () => {
      fake = await startFakeUpstream();
      redis = await connectRedis(REDIS_URL as string);
      dir = await mkdtemp(join(tmpdir(), 'tollgate-shutdown-redis-'));
      env = {
        TOLLGATE_HOME: join(dir, 'home'),
        TOLLGATE_UPSTREAM_URL: fake.url,
        TOLLGATE_LOGGING_LEVEL: 'silent',
        TOLLGATE_REDIS_URL: REDIS_URL as string,
        TOLLGATE_REDIS_KEY_PREFIX: prefix,
        TOLLGATE_SERVER_SHUTDOWN_GRACE_S: '2',
      };
      await runCli(['init'], env);
      await runCli(['credential', 'add', 'org', '--provider', 'anthropic'], env, canaryAnthropicKey());
      await runCli(['user', 'add', 'alice'], env);
      const issued = await runCli(
        ['key', 'issue', '--user', 'alice', '--concurrency', '20', '--monthly-budget', '100', '--json'],
        env,
      );
      key = (JSON.parse(issued.stdout) as { key: string }).key;
    });
    afterAll(async () => {
      await dropPrefix(redis, prefix);
      redis.disconnect();
      await fake.close();
      await rm(dir, { recursive: true, force: true });
    });

    /** Requests whose budget reservations and in-flight slots are held in Redis under this test's prefix. */
    async function held(): Promise<{ reservations: number; slots: number }> {
      // Under the installation's own budget namespace: `${prefix}budget:<org id>:r:<id>`. Requests admitted
      // in one turn share a group reservation, whose field n counts its unsettled requests.
      let reservations = 0;
      for (const r of (await keysUnder(redis, `${prefix}budget:`)).filter((k) => k.includes(':r:')))
        reservations += Number((await redis.hget(r, 'n')) ?? 1);
      let slots = 0;
      for (const flight of (await keysUnder(redis, `${prefix}rl:`)).filter((k) => k.endsWith(':flight')))
        slots += await redis.zcard(flight);
      return { reservations, slots };
    }

    it('after SIGTERM with streams finishing and one cut at the grace, nothing is left held in Redis', {
      timeout: 120_000,
    }, async () => {
      const server = await serve(env);
      const client = new Anthropic({ apiKey: key, baseURL: server.url, maxRetries: 0, timeout: 60_000 });
      let started = 0;
      const streams = Array.from({ length: 6 }, (_v, i) =>
        streamToEnd(client, `r${i} [[fake output_tokens=5 fault=slow-stream delay_ms=80]]`, () => started++),
      );
      const cut = client.messages.create(params('held [[fake fault=hang]]', 300)).catch((e: unknown) => e);
      await until('6 streams open', () => started === 6);
      await fake.waitForServed(1);
      // The control: while they run, their reservations and slots are held in Redis.
      expect(await held()).toEqual({ reservations: 7, slots: 7 });
      server.child.kill('SIGTERM');
      const results = await Promise.all(streams);
      expect(results.every((r) => r.stopped)).toBe(true);
      expect(await cut).toBeInstanceOf(Anthropic.APIError);
      expect(await server.exited).toBe(0);
      expect(await held()).toEqual({ reservations: 0, slots: 0 });
      expect(records(env.TOLLGATE_HOME ?? '')).toHaveLength(7);
    });
  },
);

describe('forward-only migrations', () => {
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-forward-'));
    env = {
      TOLLGATE_HOME: join(dir, 'home'),
      TOLLGATE_UPSTREAM_URL: 'http://127.0.0.1:9',
      TOLLGATE_LOGGING_LEVEL: 'silent',
    };
    await runCli(['init'], env);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const dbPath = () => join(env.TOLLGATE_HOME ?? '', 'tollgate.db');

  it('a binary older than the database refuses to start, names both versions and changes nothing; the same database without the newer migration starts', {
    timeout: 60_000,
  }, async () => {
    // The control: this binary's own database serves.
    const server = await serve(env);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const reader = new SQLite(dbPath(), { readonly: true });
    const newest = (
      reader.prepare('select max(name) as name from tollgate_migrations').get() as { name: string }
    ).name;
    reader.close();
    expect(newest).toMatch(/^\d{4}-/);

    // A newer Tollgate applied one more migration.
    const db = new SQLite(dbPath());
    db.prepare('insert into tollgate_migrations (name, timestamp) values (?, ?)').run(
      '9999-from-the-future',
      new Date().toISOString(),
    );
    db.close();
    const digest = databaseDigest(dbPath());

    for (const args of [
      ['serve', '--port', '0'],
      ['user', 'list'],
    ]) {
      const run = spawnCli(env, args);
      const code = await run.exited;
      expect(code, args.join(' ')).toBe(2);
      expect(run.output()).toContain('9999-from-the-future');
      expect(run.output()).toContain(newest);
      expect(run.output()).toMatch(/upgrade the binary/i);
      expect(run.output()).not.toContain('listening on');
      expect(databaseDigest(dbPath())).toBe(digest);
    }

    // Without the newer migration's row, the same binary starts again.
    const fix = new SQLite(dbPath());
    fix.prepare('delete from tollgate_migrations where name = ?').run('9999-from-the-future');
    fix.close();
    const again = await serve(env);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});
