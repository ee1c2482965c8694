// The README's runbook blocks, run as written: `<!-- runbook: NAME, run by FILE -->` followed by a ```sh
// block, run by bash in the installation's directory with `npx tollgate` being this checkout's compiled
// CLI. Each run is its own process group, so a server a block leaves running is stopped with it.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tollgate.js');

/** The shell block after `<!-- runbook: MARKER, run by … -->` in the README. */
export async function readmeBlock(marker: string): Promise<string> {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const part = new RegExp(`<!-- runbook: ${marker}, run by [^>]*-->`).exec(readme);
  const found = part
    ? /^\s*```sh\n([\s\S]*?)\n```/.exec(readme.slice(part.index + part[0].length))?.[1]
    : undefined;
  if (found === undefined) throw new Error(`the README runbook block "${marker}" is missing`);
  return found;
}

export interface BlockRun {
  readonly code: number | null;
  readonly out: string;
  /** The bash process's group: what the block left running (e.g. a server it started). */
  readonly group: number;
}

/** Runs a README block with bash (errexit, nounset, pipefail); `npx tollgate` is the compiled CLI. */
export function runBlock(script: string, cwd: string, env: Record<string, string>): Promise<BlockRun> {
  const prelude = `set -euo pipefail\nnpx() { [ "$1" = tollgate ] || exit 90; shift; node "${BIN}" "$@"; }\n`;
  const child = spawn('bash', ['-c', prelude + script], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, group: child.pid ?? 0 })));
}

/** Stops what a block left running (SIGTERM to its process group) and waits until it is gone. */
export async function stopGroup(group: number, timeoutMs = 20_000): Promise<void> {
  const alive = () => {
    try {
      process.kill(-group, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(-group, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (alive()) {
    if (Date.now() > deadline) throw new Error(`process group ${group} still running`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Served {
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<number | null>;
}

/** `tollgate serve --port 0` with this environment, once it listens. */
export function serve(env: Record<string, string>, cwd: string): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let out = '';
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1]) resolve({ child, url: m[1], exited });
    });
    void exited.then((code) => reject(new Error(`serve exited ${code}: ${out}`)));
  });
}

/** The URL a server started by a block (its output in `log`) listens on, once it does. */
export async function listeningIn(log: string, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(log, 'utf8').catch(() => '');
    const m = /listening on (http:\/\/\S+)/.exec(text);
    if (m?.[1]) return m[1];
    if (Date.now() > deadline) throw new Error(`no server started; its log:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
