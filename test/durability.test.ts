// Usage records are durable before the last byte of their response: after kill -9 of a server under
// load, every request the client saw complete has its ledger row, the usage rollups and daily usage
// still equal the ledger, and the audit chain verifies.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from './fake-upstream/index.js';
import { runCli } from './helpers/cli.js';
import { canaryAnthropicKey } from './helpers/secrets.js';

/** Requests acknowledged in each round before its kill. */
const ROUND_ACKNOWLEDGED = 25;

const BIN = join(import.meta.dirname, '..', 'bin', 'tollgate.js');

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

describe('durability under kill -9', () => {
  let fake: FakeUpstream;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    dir = await mkdtemp(join(tmpdir(), 'tollgate-kill-'));
    env = {
      TOLLGATE_HOME: join(dir, 'home'),
      TOLLGATE_UPSTREAM_URL: fake.url,
      TOLLGATE_LOGGING_LEVEL: 'silent',
    };
    await runCli(['init'], env);
    await runCli(['credential', 'add', 'org', '--provider', 'anthropic'], env, canaryAnthropicKey());
    await runCli(['user', 'add', 'alice'], env);
  });
  afterAll(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged usage record across three kill -9 rounds', { timeout: 120_000 }, async () => {
    const acknowledged = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const issued = JSON.parse(
        (await runCli(['key', 'issue', '--user', 'alice', '--json'], env)).stdout,
      ) as { key: string };
      const { child, url } = await serve(env);
      const client = new Anthropic({ apiKey: issued.key, baseURL: url, maxRetries: 0, timeout: 5000 });
      let stop = false;
      const workers = Array.from({ length: 16 }, async (_v, w) => {
        for (let i = 0; !stop && i < 1000; i++) {
          try {
            const stream = i % 2 === 0;
            const params = {
              model: 'claude-haiku-4-5',
              max_tokens: 30,
              messages: [{ role: 'user' as const, content: `r${round} w${w} i${i}` }],
            };
            // The upstream's request id comes back in the `request-id` header; the ledger stores it.
            if (stream) {
              const { data, response } = await client.messages
                .create({ ...params, stream: true })
                .withResponse();
              let stopped = false;
              for await (const event of data) if (event.type === 'message_stop') stopped = true;
              if (stopped) acknowledged.add(response.headers.get('request-id') ?? '');
            } else {
              const { response } = await client.messages.create(params).withResponse();
              acknowledged.add(response.headers.get('request-id') ?? '');
            }
          } catch {
            // requests cut off by the kill are not acknowledged
          }
        }
      });
      // Killed mid-traffic once this round has acknowledged enough requests (a fixed delay gave a
      // loaded machine too few), with the 16 workers still in flight.
      const goal = acknowledged.size + ROUND_ACKNOWLEDGED;
      const deadline = Date.now() + 30_000;
      while (acknowledged.size < goal && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      stop = true;
      await Promise.all(workers);
      await exited;
    }
    expect(acknowledged.size).toBeGreaterThanOrEqual(3 * ROUND_ACKNOWLEDGED);
    const db = new SQLite(join(env.TOLLGATE_HOME ?? '', 'tollgate.db'), { readonly: true });
    const recorded = new Set(
      (
        db.prepare('select upstream_request_id from usage_records').all() as Array<{
          upstream_request_id: string;
        }>
      ).map((r) => r.upstream_request_id),
    );
    // The rollups commit with their records: after three kill -9 rounds their sums are the ledger's.
    const sums = 'sum(input_tokens) as input, sum(output_tokens) as output, sum(cost_micro) as cost';
    const ledger = db
      .prepare(`select count(*) as calls, ${sums} from usage_records where endpoint = 'messages'`)
      .get();
    const rollups = db
      .prepare(`select sum(requests) + sum(errors) as calls, ${sums} from usage_rollups`)
      .get();
    expect(rollups).toEqual(ledger);
    // So does the daily table, which serve built in its reporting timezone (UTC by default) at start.
    const daily = db.prepare(`select sum(requests) + sum(errors) as calls, ${sums} from usage_daily`).get();
    expect(daily).toEqual(ledger);
    expect(db.prepare(`select value from meta where key = 'usage_daily_timezone'`).get()).toEqual({
      value: 'UTC',
    });
    expect((ledger as { calls: number }).calls).toBeGreaterThanOrEqual(acknowledged.size);
    db.close();
    const lost = [...acknowledged].filter((id) => !recorded.has(id));
    expect(lost).toEqual([]);
    const verify = await runCli(['audit', 'verify'], env);
    expect(verify.code).toBe(0);
  });
});
