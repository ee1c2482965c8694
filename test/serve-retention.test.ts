// `tollgate serve` with usage.retention_days (TOLLGATE_USAGE_RETENTION_DAYS) as a real process: at start
// it prunes the raw usage rows older than the retention, logs how many, and keeps the newer row; the
// usage report over both rows is the same afterwards. Runs the compiled CLI (npm test builds first).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/connect.js';
import type { UsageRecordTable } from '../src/db/schema.js';
import { readMeta } from '../src/install/meta.repo.js';
import { createLedger } from '../src/usage/ledger.js';
import { runCli } from './helpers/cli.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'tollgate.js');
const DAY = 86_400_000;

function record(id: string, at: number): UsageRecordTable {
  return {
    id,
    at,
    endpoint: 'messages',
    key_id: 'key_a',
    user_id: 'usr_a',
    team_id: null,
    service_user_id: null,
    credential_id: null,
    model: 'claude-haiku-4-5',
    input_tokens: 100,
    output_tokens: 20,
    cache_write_5m_tokens: 0,
    cache_write_1h_tokens: 0,
    cache_read_tokens: 0,
    web_search_requests: 0,
    cost_micro: 500,
    saved_micro: 0,
    latency_ms: 3,
    status: 200,
    outcome: 'ok',
    upstream_request_id: null,
    stream: 0,
    partial: 0,
    estimated: 0,
    attempts: 1,
  };
}

describe('tollgate serve with usage.retention_days', () => {
  let dir: string;
  let home: string;
  const env = () => ({ TOLLGATE_HOME: home, TOLLGATE_UPSTREAM_URL: 'http://127.0.0.1:9' });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-serve-retention-'));
    home = join(dir, 'home');
    expect((await runCli(['init'], env())).code).toBe(0);
    const db = openDatabase({ kind: 'sqlite', path: join(home, 'tollgate.db') });
    const ledger = createLedger(db, (await readMeta(db, 'org_id')) ?? 'org');
    const now = Date.now();
    await Promise.all([
      ledger.append(record('req_old', now - 3 * DAY)),
      ledger.append(record('req_new', now - 60_000)),
    ]);
    await ledger.close();
    await db.close();
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('prunes at start, logs the count, keeps the newer row and every report', async () => {
    const usage = async () => JSON.parse((await runCli(['usage', '--since', '7d', '--json'], env())).stdout);
    const before = await usage();
    expect(before[0]).toMatchObject({ requests: 2, cost_micro_usd: 1000 });

    const child: ChildProcess = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ...env(), TOLLGATE_USAGE_RETENTION_DAYS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no retention log line:\n${output}`)), 20_000);
        const check = () => {
          if (/usage retention: deleted \d+ raw usage rows/.test(output)) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout?.on('data', check);
        child.stderr?.on('data', check);
      });
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    expect(output).toContain('usage retention: deleted 1 raw usage rows older than 1 days');

    const db = openDatabase({ kind: 'sqlite', path: join(home, 'tollgate.db') });
    try {
      const ids = await db.kysely.selectFrom('usage_records').select('id').execute();
      expect(ids.map((r) => r.id)).toEqual(['req_new']);
    } finally {
      await db.close();
    }
    expect(await usage()).toEqual(before);
  });
});
