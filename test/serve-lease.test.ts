// One server per database, with real processes: a second `tollgate serve` on the same database refuses
// to start and says who serves it; CLI commands work beside the server; after `kill -9` a new server
// starts at once; SIGTERM releases the lease. On SQLite, and on PostgreSQL when
// TOLLGATE_TEST_DATABASE_URL is set.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/connect.js';
import { readServeLease } from '../src/install/serve-lease.js';
import { createPgSchema, PG_URL } from './helpers/pg.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'tollgate.js');

interface Running {
  child: ChildProcess;
  output: () => string;
}

function run(cwd: string, env: Record<string, string>, args: string[]): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', TOLLGATE_UPSTREAM_URL: 'http://127.0.0.1:9', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function collect(child: ChildProcess): () => string {
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return () => output;
}

function serve(cwd: string, env: Record<string, string>): Promise<Running> {
  const child = run(cwd, env, ['serve', '--port', '0']);
  const output = collect(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output()}`)), 15_000);
    child.stdout?.on('data', () => {
      if (/listening on http/.test(output())) {
        clearTimeout(timer);
        resolve({ child, output });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited ${code}:\n${output()}`));
    });
  });
}

function finish(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

const targets: Array<[string, () => Promise<{ env: Record<string, string>; drop: () => Promise<void> }>]> = [
  ['sqlite', async () => ({ env: {}, drop: async () => {} })],
];
const pgUrl = PG_URL;
if (pgUrl) {
  targets.push([
    'postgres',
    async () => {
      const schema = await createPgSchema(pgUrl);
      return { env: { TOLLGATE_DATABASE_URL: schema.url }, drop: schema.drop };
    },
  ]);
}

describe.each(targets)('one tollgate serve per database (%s)', (name, open) => {
  let dir: string;
  let env: Record<string, string>;
  let drop: () => Promise<void>;
  let first: Running;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-lease-'));
    const opened = await open();
    env = opened.env;
    drop = opened.drop;
    first = await serve(dir, env);
    children.push(first.child);
  });
  afterAll(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a second server with who holds the lease and what to do, exiting non-zero', async () => {
    const second = run(dir, env, ['serve', '--port', '0']);
    children.push(second);
    const output = collect(second);
    expect(await finish(second)).not.toBe(0);
    expect(output()).toContain(`another Tollgate server is serving this database: pid ${first.child.pid}`);
    expect(output()).toContain(`Stop that server first (kill -TERM ${first.child.pid})`);
    expect(output()).not.toContain('listening on');
  });

  it('keeps CLI commands working beside the running server', async () => {
    const cli = run(dir, env, ['user', 'add', 'ann']);
    const output = collect(cli);
    expect(await finish(cli), output()).toBe(0);
    const list = run(dir, env, ['user', 'list', '--json']);
    const listed = collect(list);
    expect(await finish(list)).toBe(0);
    expect(listed()).toContain('"ann"');
  });

  it('starts a new server at once after kill -9 of the holder, and SIGTERM releases the lease', async () => {
    first.child.kill('SIGKILL');
    await finish(first.child);
    const started = Date.now();
    const third = await serve(dir, env);
    children.push(third.child);
    // At once: no waiting out the 10 s a crashed holder on another host would cost.
    expect(Date.now() - started).toBeLessThan(8_000);
    third.child.kill('SIGTERM');
    expect(await finish(third.child), third.output()).toBe(0);
    const db = openDatabase(
      name === 'sqlite'
        ? { kind: 'sqlite', path: join(dir, '.tollgate', 'tollgate.db') }
        : { kind: 'postgres', url: env.TOLLGATE_DATABASE_URL ?? '' },
    );
    try {
      expect(await readServeLease(db)).toMatchObject({ holder: null });
    } finally {
      await db.close();
    }
  });

  it('stops serving, non-zero, when another server took its lease over', async () => {
    const fourth = await serve(dir, env);
    children.push(fourth.child);
    const db = openDatabase(
      name === 'sqlite'
        ? { kind: 'sqlite', path: join(dir, '.tollgate', 'tollgate.db') }
        : { kind: 'postgres', url: env.TOLLGATE_DATABASE_URL ?? '' },
    );
    try {
      // As if its heartbeat had stalled past 10 s and a server on another host had taken over.
      await db.kysely
        .updateTable('serve_lease')
        .set({ holder: 'other-instance', host: 'other-host', pid: 1, heartbeat_at: Date.now() })
        .where('id', '=', 1)
        .execute();
      expect(await finish(fourth.child)).not.toBe(0);
      expect(fourth.output()).toMatch(/stopped serving: another server took over/);
      // The new holder's lease is left alone.
      expect(await readServeLease(db)).toMatchObject({ holder: 'other-instance' });
    } finally {
      await db.close();
    }
  });
});
