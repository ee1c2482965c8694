// Runs the CLI in-process with captured streams, a chosen environment and optional stdin.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Io } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliHome {
  home: string;
  env: Record<string, string>;
  run(argv: string[], options?: { stdin?: string; env?: Record<string, string> }): Promise<CliResult>;
  /** Runs and asserts exit 0, returning stdout parsed as JSON (adds --json). */
  json<T = unknown>(argv: string[], options?: { stdin?: string; env?: Record<string, string> }): Promise<T>;
  /** Every byte any command printed so far (stdout and stderr). */
  transcript(): string;
  cleanup(): Promise<void>;
}

export async function runCli(argv: string[], env: Record<string, string>, stdin = ''): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const input = Readable.from(stdin.length > 0 ? [Buffer.from(stdin)] : []) as Readable & { isTTY?: boolean };
  const io: Io = {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    stdin: input,
    env,
    cwd: env.TOLLGATE_TEST_CWD ?? process.cwd(),
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

/** A fresh, empty home in a temp directory; `extraEnv` adds e.g. TOLLGATE_UPSTREAM_URL or a database URL. */
export async function tempHome(extraEnv: Record<string, string> = {}): Promise<CliHome> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-test-'));
  const home = join(dir, 'home');
  const env: Record<string, string> = {
    TOLLGATE_HOME: home,
    TOLLGATE_TEST_CWD: dir,
    TOLLGATE_UPSTREAM_URL: 'http://127.0.0.1:9',
    ...extraEnv,
  };
  let log = '';
  const run: CliHome['run'] = async (argv, options = {}) => {
    const result = await runCli(argv, { ...env, ...options.env }, options.stdin);
    log += result.stdout + result.stderr;
    return result;
  };
  return {
    home,
    env,
    run,
    async json<T>(argv: string[], options = {}) {
      const result = await run([...argv, '--json'], options);
      if (result.code !== 0)
        throw new Error(`tollgate ${argv.join(' ')} exited ${result.code}: ${result.stderr}`);
      return JSON.parse(result.stdout) as T;
    },
    transcript: () => log,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
