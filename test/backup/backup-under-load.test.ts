// Backups of a serving installation (a server spawned from the compiled CLI, traffic from the official
// SDK through the gateway): one taken mid-load restores to a self-consistent copy (every usage row's
// cost in the rollups, daily usage and every budget scope's spend); one taken once the load stopped
// restores on SQLite and PostgreSQL to the same usage and budgets, the audit chain verifies, and the
// gateway serves the restored copy with the same keys; PostgreSQL → SQLite too.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connect.js';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';
import { ENGINES, type Home, makeHome } from './fixture.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tollgate.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The compiled CLI as a separate process, as an operator runs it beside the server. */
function cli(argv: string[], env: Record<string, string>): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...argv], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

async function ok(argv: string[], home: Home): Promise<string> {
  const run = await cli(argv, home.env);
  if (run.code !== 0) throw new Error(`tollgate ${argv.join(' ')} exited ${run.code}: ${run.stderr}`);
  return run.stdout;
}

function serve(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1]) resolve({ child, url: m[1] });
    });
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function waitFor(condition: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What operators compare: usage by every grouping and the budgets (with their spend). */
async function reports(home: Home): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  // In-process (quicker than a process each); as sets of rows: the engines order rows of equal rank
  // (the team "none" among teams) differently.
  for (const by of ['model', 'key', 'user', 'team', 'day']) {
    const rows = await home.json<unknown[]>(['usage', '--since', '2d', '--by', by]);
    out[`usage by ${by}`] = rows.map((r) => JSON.stringify(r)).sort();
  }
  out.budgets = await home.json(['budget', 'list']);
  return out;
}

function dbOf(home: Home) {
  const url = home.env.TOLLGATE_DATABASE_URL;
  return openDatabase(
    url ? { kind: 'postgres', url } : { kind: 'sqlite', path: join(home.home, 'tollgate.db') },
  );
}

let fake: FakeUpstream;
let source: Home;
let server: { child: ChildProcess; url: string };
let keys: string[] = [];
const homes: Home[] = [];
const mid = () => join(source.home, '..', 'mid.tgbak');
const quiet = () => join(source.home, '..', 'quiet.tgbak');

async function restored(engine: 'sqlite' | 'postgres', file: string, from = source): Promise<Home> {
  const home = await makeHome(engine, { masterKeyFrom: from.home, upstream: fake.url });
  homes.push(home);
  await ok(['restore', file], home);
  return home;
}

beforeAll(async () => {
  fake = await startFakeUpstream();
  source = await makeHome('sqlite', { upstream: fake.url });
  homes.push(source);
  const put = async (argv: string[], stdin?: string) => {
    const run = await source.run(argv, stdin);
    if (run.code !== 0) throw new Error(`${argv.join(' ')}: ${run.stderr}`);
    return run.stdout;
  };
  await put(['init']);
  await put(['credential', 'add', 'org', '--provider', 'anthropic'], canaryAnthropicKey());
  await put(['team', 'add', 'core']);
  await put(['user', 'add', 'alice', '--team', 'core', '--monthly-budget', '50']);
  await put(['user', 'add', 'bob']);
  await put(['budget', 'set', '--org', '--period', 'month', '--usd', '1000']);
  keys = [];
  for (const user of ['alice', 'bob']) {
    const issued = JSON.parse(await put(['key', 'issue', '--user', user, '--json'])) as { key: string };
    keys.push(issued.key);
  }
  server = await serve(source.env);
}, 120_000);

afterAll(async () => {
  if (server) await stop(server.child);
  await fake?.close();
  for (const home of homes) await home.cleanup();
});

describe('backup of a serving installation', () => {
  it('takes a mid-load backup that restores to a self-consistent copy', { timeout: 240_000 }, async () => {
    const acknowledged: string[] = [];
    let halt = false;
    const workers = Array.from({ length: 6 }, async (_v, w) => {
      const client = new Anthropic({
        apiKey: keys[w % keys.length],
        baseURL: server.url,
        maxRetries: 2,
        timeout: 30_000,
      });
      for (let i = 0; !halt; i++) {
        const params = {
          model: 'claude-haiku-4-5',
          max_tokens: 30,
          messages: [{ role: 'user' as const, content: `w${w} i${i}` }],
        };
        if (i % 2 === 0) {
          const stream = await client.messages.create({ ...params, stream: true });
          for await (const _event of stream) {
            // drained
          }
        } else await client.messages.create(params);
        acknowledged.push(`w${w} i${i}`);
      }
    });
    await waitFor(() => acknowledged.length >= 40, '40 requests before the backup');
    const before = acknowledged.length;
    const backup = await cli(['backup', '--out', mid()], source.env);
    const during = acknowledged.length - before;
    await waitFor(() => acknowledged.length >= before + during + 40, '40 requests after the backup');
    halt = true;
    await Promise.all(workers);
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    // The server answered requests while the backup ran.
    expect(during).toBeGreaterThan(0);

    const copy = await restored('sqlite', mid());
    expect((await cli(['audit', 'verify'], copy.env)).code).toBe(0);
    const db = dbOf(copy);
    try {
      const count = async (table: string) =>
        Number(
          (await sql<{ n: number }>`select count(*) as n from ${sql.table(table)}`.execute(db.kysely)).rows[0]
            ?.n,
        );
      // Taken mid-load: some of the traffic, not all of it.
      const records = await count('usage_records');
      expect(records).toBeGreaterThanOrEqual(40);
      expect(records).toBeLessThan(acknowledged.length);
      const sums =
        'count(*) as calls, sum(input_tokens) as input, sum(output_tokens) as output, sum(cost_micro) as cost';
      const ledger = await sql
        .raw(`select ${sums} from usage_records where endpoint = 'messages'`)
        .execute(db.kysely);
      const calls =
        'sum(requests) + sum(errors) as calls, sum(input_tokens) as input, sum(output_tokens) as output, sum(cost_micro) as cost';
      const rollups = await sql.raw(`select ${calls} from usage_rollups`).execute(db.kysely);
      const daily = await sql.raw(`select ${calls} from usage_daily`).execute(db.kysely);
      expect(rollups.rows).toEqual(ledger.rows);
      expect(daily.rows).toEqual(ledger.rows);
      // Every budget scope's spend is the sum of its usage rows' cost, in the same snapshot.
      for (const [scope, column] of [
        ['user', 'user_id'],
        ['key', 'key_id'],
        ['team', 'team_id'],
      ] as const) {
        const spent = await sql
          .raw(`select scope_id as id, sum(spent_micro) as cost from spend
            where scope_type = '${scope}' group by scope_id order by scope_id`)
          .execute(db.kysely);
        const used = await sql
          .raw(`select ${column} as id, sum(cost_micro) as cost from usage_records
            where cost_micro > 0 and ${column} is not null group by ${column} order by ${column}`)
          .execute(db.kysely);
        expect(spent.rows, scope).toEqual(used.rows);
      }
      const org = await sql
        .raw(`select sum(spent_micro) as cost from spend where scope_type = 'org'`)
        .execute(db.kysely);
      const all = await sql.raw('select sum(cost_micro) as cost from usage_records').execute(db.kysely);
      expect(org.rows).toEqual(all.rows);
      expect(Number((all.rows[0] as { cost: number }).cost)).toBeGreaterThan(0);
    } finally {
      await db.close();
    }
  });

  describe.each(ENGINES)('a backup taken with the load stopped, restored on %s', (engine) => {
    it('gives the same usage and budgets, verifies, and serves the same keys', {
      timeout: 240_000,
    }, async () => {
      // The server still runs; only the traffic stopped, so the source's reports are the snapshot's.
      await ok(['backup', '--out', quiet(), '--force'], source);
      const expected = await reports(source);
      const copy = await restored(engine, quiet());
      expect(await reports(copy)).toEqual(expected);
      expect((await cli(['audit', 'verify'], copy.env)).code).toBe(0);

      const moved = await serve(copy.env);
      try {
        const client = new Anthropic({ apiKey: keys[0], baseURL: moved.url, maxRetries: 2, timeout: 30_000 });
        const answer = await client.messages.create({
          model: 'claude-haiku-4-5',
          max_tokens: 20,
          messages: [{ role: 'user', content: 'after the restore' }],
        });
        expect(answer.type).toBe('message');
        const revoked = new Anthropic({ apiKey: `${keys[0]}x`, baseURL: moved.url, maxRetries: 0 });
        await expect(
          revoked.messages.create({
            model: 'claude-haiku-4-5',
            max_tokens: 20,
            messages: [{ role: 'user', content: 'no' }],
          }),
        ).rejects.toMatchObject({ status: 401 });
      } finally {
        await stop(moved.child);
      }
      type ByUser = Array<{ user: string; requests: number }>;
      const after = await copy.json<ByUser>(['usage', '--since', '2d', '--by', 'user']);
      const was = (expected['usage by user'] as string[]).map((r) => JSON.parse(r) as ByUser[number]);
      const alice = (rows: Array<{ user: string; requests: number }>) =>
        rows.find((r) => r.user === 'alice')?.requests;
      expect(alice(after)).toBe((alice(was) ?? 0) + 1);
      expect((await cli(['audit', 'verify'], copy.env)).code).toBe(0);

      if (engine === 'postgres') {
        // And back: PostgreSQL → SQLite gives the PostgreSQL copy's reports.
        const fromPg = join(copy.home, '..', 'from-pg.tgbak');
        await ok(['backup', '--out', fromPg], copy);
        const back = await restored('sqlite', fromPg, copy);
        expect(await reports(back)).toEqual(await reports(copy));
        expect((await cli(['audit', 'verify'], back.env)).code).toBe(0);
      }
    });
  });
});
