// `tollgate serve` as a real process, restarted between a budget crossing and its delivery: the first
// server's attempt fails (the receiver answers 500) and it is stopped (SIGTERM) before its retry; the
// second server on the same database delivers that alert once, raises nothing again, and a third start
// sends nothing at all.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { runCli } from '../helpers/cli.js';
import { canaryAnthropicKey } from '../helpers/secrets.js';
import { type Receiver, startReceiver, until } from './receiver.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tollgate.js');
const PARAMS = {
  model: 'claude-haiku-4-5',
  max_tokens: 20,
  messages: [{ role: 'user' as const, content: 'serve restart [[fake output_tokens=20]]' }],
};

function serve(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 20_000);
    child.stdout?.on('data', () => {
      const match = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve({ child, url: match[1] });
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}:\n${output}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

describe('alerts across a restart of tollgate serve', () => {
  let dir: string;
  let fake: FakeUpstream;
  let receiver: Receiver;
  let env: Record<string, string>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-alert-serve-'));
    fake = await startFakeUpstream();
    receiver = await startReceiver();
    env = {
      TOLLGATE_HOME: join(dir, 'home'),
      TOLLGATE_UPSTREAM_URL: fake.url,
      TOLLGATE_ALERTS_WEBHOOK_URL: receiver.url,
      ORG_KEY: canaryAnthropicKey(),
    };
    const ok = async (argv: string[]) => {
      const result = await runCli(argv, env);
      if (result.code !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr}`);
      return result.stdout;
    };
    await ok(['init']);
    await ok(['credential', 'add', 'org-key', '--provider', 'anthropic', '--from-env', 'ORG_KEY']);
    await ok(['user', 'add', 'ann']);
  }, 60_000);
  afterAll(async () => {
    await receiver.close();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('delivers the alert once after the restart, and never raises or sends it again', async () => {
    const issue = (await runCli(['key', 'issue', '--user', 'ann', '--json'], env)).stdout;
    const key = (JSON.parse(issue) as { key: string }).key;
    let server = await serve(env);
    try {
      const client = () => new Anthropic({ apiKey: key, baseURL: server.url, maxRetries: 0 });
      await client().messages.create(PARAMS);
      const usage = JSON.parse((await runCli(['usage', '--json'], env)).stdout) as Array<{
        cost_usd: string;
      }>;
      const unit = Math.round(Number(usage[0]?.cost_usd) * 1e6);
      expect(unit).toBeGreaterThan(0);
      // 10 requests' worth: 4 more requests (5 in all) cross 50 %.
      const set = await runCli(
        ['budget', 'set', '--user', 'ann', '--period', 'month', '--usd', ((10 * unit) / 1e6).toFixed(6)],
        env,
      );
      expect(set.code, set.stderr).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 1_500)); // the server's change feed (≤ 1 s)
      receiver.failNext(500);
      for (let i = 0; i < 4; i++) await client().messages.create(PARAMS);
      await until(
        'the failed attempt',
        () => receiver.received.length,
        (n) => n === 1,
        20_000,
      );
      // Stopped before its retry (2 s later).
      await stop(server.child);
      expect(receiver.received).toHaveLength(1);

      server = await serve(env);
      await until(
        'the delivery after the restart',
        () => receiver.received.length,
        (n) => n === 2,
        20_000,
      );
      const [failed, delivered] = receiver.received;
      expect(delivered?.body.alert_id).toBe(failed?.body.alert_id);
      expect(delivered?.body).toMatchObject({ kind: 'budget', scope: 'user', name: 'ann', threshold: 0.5 });
      // Give the new server time to look again (start-up check, polls): nothing more is sent.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      await stop(server.child);
      server = await serve(env);
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect(receiver.received).toHaveLength(2);
      const status = JSON.parse((await runCli(['status', '--json'], env)).stdout) as {
        alerts: { recent: Array<{ delivery: string; attempts: number }>; undelivered_count: number };
      };
      expect(status.alerts.recent.map((a) => [a.delivery, a.attempts])).toEqual([['delivered', 2]]);
      expect(status.alerts.undelivered_count).toBe(0);
    } finally {
      await stop(server.child);
    }
  }, 120_000);
});
