// `tollgate serve` as a real process: first start creates the installation and prints the admin token
// once; health endpoints answer; the admin API requires that token; SIGTERM stops it cleanly.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '..', 'bin', 'tollgate.js');

interface Running {
  child: ChildProcess;
  url: string;
  output: () => string;
}

function start(cwd: string, env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', TOLLGATE_UPSTREAM_URL: 'http://127.0.0.1:9', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 15_000);
    const onData = () => {
      const match = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve({ child, url: match[1], output: () => output });
      }
    };
    child.stdout?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited ${code}:\n${output}`)));
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

describe('tollgate serve', () => {
  let dir: string;
  let first: Running;
  let token: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-serve-'));
    first = await start(dir);
    const match = /\n\s+(tga_[A-Za-z0-9]+)\n/.exec(first.output());
    token = match?.[1] ?? '';
  });
  afterAll(async () => {
    if (first.child.exitCode === null) await stop(first.child);
    await rm(dir, { recursive: true, force: true });
  });

  it('creates ./.tollgate on first start and prints the admin token once', () => {
    expect(first.output()).toContain(`created a new installation in ${join(dir, '.tollgate')}`);
    expect(token).toMatch(/^tga_/);
  });

  it('answers health and readiness', async () => {
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${first.url}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ready' });
    expect((await fetch(first.url, { method: 'HEAD' })).status).toBe(200);
  });

  it('requires the admin token on the admin API, with one answer for every failure', async () => {
    const ok = await fetch(`${first.url}/admin/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ actor: 'admin-token' });
    const bodies = new Set<string>();
    const wrong = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    for (const header of [
      undefined,
      '',
      'Bearer ',
      `Bearer ${wrong}`,
      `Basic ${token}`,
      "Bearer ' or 1=1 --",
      `Bearer ${'x'.repeat(8000)}`,
    ]) {
      const response = await fetch(`${first.url}/admin/v1/whoami`, {
        headers: header === undefined ? {} : { authorization: header },
      });
      expect(response.status).toBe(401);
      const body = (await response.json()) as { error: { message: string } };
      bodies.add(body.error.message);
    }
    expect(bodies.size).toBe(1);
  });

  it('answers unknown gateway paths with 404 in Anthropic error shape', async () => {
    const response = await fetch(`${first.url}/v1/messages/batches`, { method: 'POST' });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
  });

  it('stops on SIGTERM, and a second start reuses the installation without a new token', async () => {
    expect(await stop(first.child)).toBe(0);
    const second = await start(dir);
    expect(second.output()).not.toContain('tga_');
    const ok = await fetch(`${second.url}/admin/v1/whoami`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(ok.status).toBe(200);
    expect(await stop(second.child)).toBe(0);
  });

  it('refuses to start with a wrong master key', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', TOLLGATE_MASTER_KEY: Buffer.alloc(32, 9).toString('base64') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).not.toBe(0);
    expect(err).toMatch(/master key does not belong to this installation/);
  });
});
