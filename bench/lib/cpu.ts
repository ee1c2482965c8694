// CPU time of a process (user + system), from /proc/PID/stat: what one request costs the server, which
// varies far less from run to run than req/s does on a shared 2-core machine.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | null = null;

function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * CPU seconds used so far by `pid`, or null when the process is gone or /proc is unavailable. With
 * `reaped`, plus what its children that exited and were waited for used (a server's workers).
 */
export function cpuSeconds(pid: number, reaped = false): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const children = reaped ? Number(fields[13]) + Number(fields[14]) : 0;
    const total = utime + stime + children;
    return Number.isFinite(total) ? total / clockTicks() : null;
  } catch {
    return null;
  }
}

/**
 * Waits until `pid` uses under 2% of a core over half a second (or 20 s pass); answers the wait in ms.
 * A server still busy with start-up work would otherwise charge it to the first measured run.
 */
export async function waitIdle(pid: number, limitMs = 20_000): Promise<number> {
  const started = Date.now();
  let last = cpuSeconds(pid);
  while (Date.now() - started < limitMs) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = cpuSeconds(pid);
    if (now === null || last === null) return Date.now() - started;
    if (now - last < 0.01) return Date.now() - started;
    last = now;
  }
  return Date.now() - started;
}
