// The README's runbook blocks ("Back up and restore", "Move from SQLite to PostgreSQL"), run as written
// by bash in a fresh directory, `npx tollgate` being the compiled CLI: the first while a server spawned
// from it serves traffic, the second after it stopped, into a throw-away PostgreSQL schema.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { runCli } from '../helpers/cli.js';
import { createPgSchema, PG_URL, type PgSchema } from '../helpers/pg.js';
import { BIN, readmeBlock, runBlock } from '../helpers/runbook.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';

const PASSPHRASE = 'a long runbook passphrase';

let fake: FakeUpstream;
let dir: string;
let env: Record<string, string>;
let server: ChildProcess | null = null;
let key: string;

beforeAll(async () => {
  fake = await startFakeUpstream();
  dir = await mkdtemp(join(tmpdir(), 'tollgate-runbook-'));
  env = {
    TOLLGATE_HOME: join(dir, '.tollgate'),
    TOLLGATE_TEST_CWD: dir,
    TOLLGATE_UPSTREAM_URL: fake.url,
    TOLLGATE_LOGGING_LEVEL: 'silent',
  };
  expect((await runCli(['init'], env)).code).toBe(0);
  expect(
    (await runCli(['credential', 'add', 'org', '--provider', 'anthropic'], env, canaryAnthropicKey())).code,
  ).toBe(0);
  expect((await runCli(['user', 'add', 'alice'], env)).code).toBe(0);
  key = (
    JSON.parse((await runCli(['key', 'issue', '--user', 'alice', '--json'], env)).stdout) as { key: string }
  ).key;
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server = child;
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
  });
  const client = new Anthropic({ apiKey: key, baseURL: url, maxRetries: 2 });
  for (let i = 0; i < 3; i++)
    await client.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 20,
      messages: [{ role: 'user', content: `runbook ${i}` }],
    });
}, 120_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server?.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  await fake?.close();
  await rm(dir, { recursive: true, force: true });
});

const shellEnv = () => ({
  TOLLGATE_UPSTREAM_URL: fake.url,
  TOLLGATE_LOGGING_LEVEL: 'silent',
  TOLLGATE_BACKUP_PASSPHRASE: PASSPHRASE,
});

describe('the README operations runbook', () => {
  it('backs up while serving and restores the sealed copy, as written', { timeout: 180_000 }, async () => {
    const run = await runBlock(await readmeBlock('back up and restore'), dir, shellEnv());
    expect(run.out).toMatch(/Restored \d+ rows/);
    expect(run.code).toBe(0);
    const restored = { ...env, TOLLGATE_HOME: join(dir, 'restored') };
    const usage = (e: Record<string, string>) =>
      runCli(['usage', '--json'], e).then((r) => JSON.parse(r.stdout));
    expect(await usage(restored)).toEqual(await usage(env));
  });

  it.skipIf(!PG_URL)(
    'moves the stopped installation to PostgreSQL, as written',
    { timeout: 180_000 },
    async () => {
      if (server) {
        const exited = new Promise((r) => server?.once('exit', r));
        server.kill('SIGTERM');
        await exited;
      }
      const schema: PgSchema = await createPgSchema(PG_URL ?? '');
      try {
        const run = await runBlock(await readmeBlock('move to PostgreSQL'), dir, {
          ...shellEnv(),
          DATABASE_URL: schema.url,
        });
        expect(run.code).toBe(0);
        const expected = JSON.parse((await runCli(['usage', '--json'], env)).stdout) as unknown[];
        expect(expected.length).toBeGreaterThan(0);
        // The block's last command printed the moved installation's usage.
        const printed = run.out.slice(run.out.lastIndexOf('\n[') + 1);
        expect(JSON.parse(printed)).toEqual(expected);
      } finally {
        await schema.drop();
      }
    },
  );
});
