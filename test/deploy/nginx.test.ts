// The deployment as shipped: deploy/local-multi.sh starts two `tollgate serve` processes on one
// PostgreSQL database and one Redis behind Debian's nginx running deploy/nginx/tollgate.conf with a
// self-signed certificate; the official SDK streams answers through it over HTTPS (trusting that
// certificate only, through its fetch options), events arrive as they are sent, both instances serve,
// a revocation reaches both, and `stop` ends every process and removes nginx's directory.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/index.js';
import { runCli } from '../helpers/cli.js';
import { PG_URL } from '../helpers/pg.js';

const REDIS_URL = process.env.TOLLGATE_TEST_REDIS_URL;
const NGINX = '/usr/sbin/nginx';
const SCRIPT = join(import.meta.dirname, '../../deploy/local-multi.sh');
const why = !existsSync(NGINX)
  ? `skipped: nginx is not installed (${NGINX}; apt-get install -y nginx --no-install-recommends)`
  : !PG_URL || !REDIS_URL
    ? 'skipped: needs TOLLGATE_TEST_DATABASE_URL and TOLLGATE_TEST_REDIS_URL'
    : 'runs';

function run(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [SCRIPT, ...args],
      { env: { ...process.env, ...env }, timeout: 90_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, out: stdout + stderr });
      },
    );
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(why !== 'runs')(`nginx in front of two instances (PostgreSQL + Redis) — ${why}`, () => {
  let fake: FakeUpstream;
  let dir: string;
  let env: Record<string, string>;
  let httpsPort: number;
  let ports: number[];
  let started: { code: number; out: string };
  let cliEnv: Record<string, string>;
  let ca: string;
  let nginxDir: string;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    dir = await mkdtemp(join(tmpdir(), 'tollgate-deploy-'));
    ports = [await freePort(), await freePort()];
    httpsPort = await freePort();
    const pg = new URL(PG_URL as string);
    pg.pathname = '';
    env = {
      TOLLGATE_LOCAL_DIR: join(dir, 'state'),
      TOLLGATE_LOCAL_PORTS: ports.join(' '),
      TOLLGATE_LOCAL_HTTPS_PORT: String(httpsPort),
      TOLLGATE_LOCAL_PG: pg.toString().replace(/\/$/, ''),
      TOLLGATE_LOCAL_DB: `tollgate_deploy_${randomBytes(4).toString('hex')}`,
      TOLLGATE_REDIS_URL: REDIS_URL as string,
      TOLLGATE_UPSTREAM_URL: fake.url,
    };
    started = await run(['start'], env);
    if (started.code !== 0) return;
    // The CLI beside the instances: the env file the script wrote (the same database, key and Redis).
    cliEnv = Object.fromEntries(
      readFileSync(join(dir, 'state/env'), 'utf8')
        .trim()
        .split('\n')
        .map(
          (line) =>
            line
              .replace(/^export /, '')
              .split(/=(.*)/s)
              .slice(0, 2) as [string, string],
        ),
    );
    nginxDir = readFileSync(join(dir, 'state/nginx-dir'), 'utf8').trim();
    ca = readFileSync(join(nginxDir, 'tls/fullchain.pem'), 'utf8');
  }, 120_000);

  afterAll(async () => {
    if (env) await run(['purge'], env);
    await fake?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  const cli = async (argv: string[], stdin = '') => {
    const result = await runCli(argv, { ...cliEnv, TOLLGATE_TEST_CWD: dir }, stdin);
    expect(result.code, result.stderr).toBe(0);
    return result.stdout;
  };

  /** An SDK client that trusts the throwaway certificate and nothing else for this connection. */
  const client = (key: string) =>
    new Anthropic({
      apiKey: key,
      baseURL: `https://127.0.0.1:${httpsPort}`,
      maxRetries: 0,
      fetch: undiciFetch as unknown as typeof fetch,
      fetchOptions: { dispatcher: new Agent({ connect: { ca } }) },
    });

  it('starts: both instances listen, nginx accepts the configuration', () => {
    expect(started.code, started.out).toBe(0);
    expect(started.out).toContain('PostgreSQL answers at');
    for (const port of ports) expect(started.out).toContain(`instance listening on http://127.0.0.1:${port}`);
    expect(started.out).toContain(`nginx: https://127.0.0.1:${httpsPort}`);
  });

  it('sends HSTS through nginx over HTTPS (X-Forwarded-Proto), never to a direct plain-http request', async () => {
    const dispatcher = new Agent({ connect: { ca } });
    const viaNginx = await undiciFetch(`https://127.0.0.1:${httpsPort}/healthz`, { dispatcher });
    expect(viaNginx.status).toBe(200);
    expect(viaNginx.headers.get('strict-transport-security')).toBe('max-age=31536000');
    expect(viaNginx.headers.get('x-frame-options')).toBe('DENY');
    const direct = await fetch(`http://127.0.0.1:${ports[0]}/healthz`);
    expect(direct.status).toBe(200);
    expect(direct.headers.get('strict-transport-security')).toBeNull();
    await dispatcher.close();
  });

  it('streams through nginx over HTTPS with the official SDK, unbuffered, from both instances', async () => {
    await cli(
      ['credential', 'add', 'org-key', '--provider', 'anthropic'],
      `sk-ant-api03-test-deploy-${randomBytes(12).toString('hex')}`,
    );
    await cli(['user', 'add', 'alice']);
    const issued = JSON.parse(await cli(['key', 'issue', '--user', 'alice', '--json'])) as {
      id: string;
      key: string;
    };
    const sdk = client(issued.key);

    // 20 events 40 ms apart: relayed as they come, the client sees them spread over ~0.8 s; buffered
    // by nginx, they would arrive together at the end.
    const arrivals: number[] = [];
    let text = '';
    const stream = await sdk.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 100,
      stream: true,
      messages: [{ role: 'user', content: 'hi [[fake fault=slow-stream delay_ms=40 output_tokens=20]]' }],
    });
    for await (const event of stream) {
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
        arrivals.push(Date.now());
        text += event.delta.text;
      }
    }
    expect(arrivals.length).toBeGreaterThanOrEqual(10);
    expect(text.length).toBeGreaterThan(0);
    const spread = (arrivals.at(-1) as number) - (arrivals[0] as number);
    expect(spread).toBeGreaterThan(0.5 * 40 * (arrivals.length - 1));

    // More streams: nginx spreads them over both instances.
    for (let i = 0; i < 5; i++) {
      const more = await sdk.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 50,
        stream: true,
        messages: [{ role: 'user', content: `again ${i}` }],
      });
      let events = 0;
      for await (const _ of more) events++;
      expect(events).toBeGreaterThan(3);
    }
    const log = readFileSync(join(nginxDir, 'access.log'), 'utf8');
    for (const port of ports) {
      const served = log
        .split('\n')
        .filter((l) => l.includes('POST /v1/messages') && l.endsWith(`127.0.0.1:${port}`));
      expect(served.length, `instance ${port} served streams`).toBeGreaterThan(0);
      expect(served.every((l) => / 200 /.test(l))).toBe(true);
    }
    // Each instance's own log agrees.
    for (const port of ports) {
      const own = readFileSync(join(dir, `state/logs/instance-${port}.log`), 'utf8');
      expect(own).toMatch(/"path":"\/v1\/messages","status":200/);
    }

    // Plain HTTP on the TLS port and an untrusted certificate are refused (TLS is really in front).
    const untrusted = new Anthropic({
      apiKey: issued.key,
      baseURL: `https://127.0.0.1:${httpsPort}`,
      maxRetries: 0,
    });
    await expect(untrusted.models.list()).rejects.toThrow(/Connection error/);

    // A revocation from the CLI reaches both instances behind nginx within 1 s.
    await cli(['key', 'revoke', issued.id]);
    const start = Date.now();
    let refusedInARow = 0;
    while (refusedInARow < 4) {
      const result = await sdk.messages
        .create({ model: 'claude-haiku-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })
        .then(
          () => 'ok',
          (e: unknown) => (e instanceof Anthropic.AuthenticationError ? 'refused' : String(e)),
        );
      refusedInARow = result === 'refused' ? refusedInARow + 1 : 0;
      expect(Date.now() - start).toBeLessThan(1_500);
    }
  }, 60_000);

  it('stop ends nginx and every instance and removes nginx directory', async () => {
    const pids = ports.map((port) =>
      Number(readFileSync(join(dir, `state/pids/instance-${port}.pid`), 'utf8')),
    );
    const nginxPid = Number(readFileSync(join(nginxDir, 'nginx.pid'), 'utf8'));
    expect([...pids, nginxPid].every(alive)).toBe(true);
    const stopped = await run(['stop'], env);
    expect(stopped.code, stopped.out).toBe(0);
    for (const port of ports) expect(stopped.out).toContain(`instance-${port} stopped`);
    expect([...pids, nginxPid].some(alive)).toBe(false);
    expect(existsSync(nginxDir)).toBe(false);
    for (const port of ports)
      expect(readFileSync(join(dir, `state/logs/instance-${port}.log`), 'utf8')).toContain('Shutting down');
  }, 60_000);
});
