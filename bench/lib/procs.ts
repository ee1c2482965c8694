// Child processes of the bench: every server runs in a process of its own (so none shares an event
// loop with another or with the load generator). All children are tracked and stopped on exit,
// SIGINT/SIGTERM/SIGHUP, an uncaught error or the run's time limit; servers additionally load
// servers/guard.js, which ends them if this runner dies without cleaning up.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { log, sleep } from './util.js';

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Managed {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly exited: Promise<ExitInfo>;
  /** Set once the process has exited. */
  exit: ExitInfo | null;
}

const live = new Map<number, { name: string; child: ChildProcess }>();
let exiting = false;

/** Once shutting down, nothing new is started (the scenario loop may still be unwinding). */
function refuseWhenExiting(name: string): void {
  if (exiting) throw new Error(`not starting ${name}: the bench is shutting down`);
}

function track(name: string, child: ChildProcess): Promise<ExitInfo> {
  if (child.pid !== undefined) live.set(child.pid, { name, child });
  return new Promise<ExitInfo>((resolve) => {
    child.once('error', (error) => {
      if (child.pid !== undefined) live.delete(child.pid);
      log(`bench: ${name} could not run: ${error.message}`);
      resolve({ code: 127, signal: null });
    });
    child.once('exit', (code, signal) => {
      if (child.pid !== undefined) live.delete(child.pid);
      resolve({ code, signal });
    });
  });
}

/** Starts a long-running process whose stdout and stderr go straight to `logFile` (no pipe to drain). */
export function startLogged(
  name: string,
  command: string,
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; cwd: string; logFile: string },
): Managed {
  refuseWhenExiting(name);
  const fd = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`bench: cannot start ${name} (${command})`);
  const managed: Managed = {
    name,
    pid: child.pid,
    logFile: options.logFile,
    exit: null,
    exited: track(name, child).then((info) => {
      managed.exit = info;
      return info;
    }),
  };
  return managed;
}

export function logTail(file: string, lines = 25): string {
  if (!existsSync(file)) return '(no log)';
  const text = readFileSync(file, 'utf8').trimEnd();
  return text.split('\n').slice(-lines).join('\n') || '(empty log)';
}

/** Waits for `listening on http://…` in the process's log; returns the URL. */
export async function waitForListening(m: Managed, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(m.logFile) ? readFileSync(m.logFile, 'utf8') : '';
    const found = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
    if (found?.[1]) return found[1];
    if (m.exit) {
      throw new Error(
        `${m.name} exited (code ${m.exit.code}, signal ${m.exit.signal}) before listening:\n${logTail(m.logFile)}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(`${m.name} did not start listening within ${timeoutMs} ms:\n${logTail(m.logFile)}`);
    }
    await sleep(50);
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stop(m: Managed, graceMs = 5_000): Promise<ExitInfo> {
  if (m.exit) return m.exit;
  process.kill(m.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (!m.exit) process.kill(m.pid, 'SIGKILL');
  }, graceMs);
  const info = await m.exited;
  clearTimeout(timer);
  return info;
}

export interface Captured {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** Runs a command to completion with captured output, killed after `timeoutMs`. */
export async function runCaptured(
  name: string,
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs: number; echo?: boolean },
): Promise<Captured> {
  refuseWhenExiting(name);
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    cwd: options.cwd ?? process.cwd(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = track(name, child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => {
    err.push(chunk);
    if (options.echo) process.stderr.write(chunk);
  });
  child.stdin?.on('error', () => {});
  child.stdin?.end(options.input ?? '');
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs);
  const info = await exited;
  clearTimeout(timer);
  return {
    ...info,
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
    timedOut,
  };
}

/** Synchronous last resort (process 'exit'): SIGKILL whatever is still running. */
export function killAllNow(): void {
  for (const [pid] of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

/** Graceful stop of everything still running (SIGTERM, then SIGKILL after 3 s). */
export async function stopAll(): Promise<void> {
  const waits = [...live.entries()].map(async ([pid, { child }]) => {
    const gone = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 3_000);
    await gone;
    clearTimeout(timer);
  });
  await Promise.all(waits);
}

/** Stops every child, then exits with `code`. Safe to call more than once. */
export function shutdown(code: number, why?: string): void {
  if (exiting) return;
  exiting = true;
  if (why) log(`bench: ${why}`);
  const hard = setTimeout(() => process.exit(code), 8_000);
  hard.unref();
  void stopAll().finally(() => process.exit(code));
}

/** Installs the cleanup handlers and a hard time limit for the whole run. */
export function installCleanup(limitMs: number): void {
  process.on('exit', killAllNow);
  const signals: Array<[NodeJS.Signals, number]> = [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ];
  for (const [signal, code] of signals) {
    process.on(signal, () => shutdown(code, `${signal}: stopping all servers`));
  }
  process.on('uncaughtException', (error) => {
    log(`bench: unexpected error: ${error.stack ?? String(error)}`);
    shutdown(1);
  });
  process.on('unhandledRejection', (error) => {
    log(
      `bench: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    shutdown(1);
  });
  const limit = setTimeout(
    () => shutdown(124, `time limit of ${Math.round(limitMs / 1000)} s exceeded: stopping`),
    limitMs,
  );
  limit.unref();
}
