// CPU time of the shared services a Tollgate on PostgreSQL + Redis leans on: every `redis-server`
// (or `valkey-server`) process and every `postgres` process (server and backends) on this machine,
// summed from /proc. A process's exited children count too, once their parent has waited for them:
// PostgreSQL's autovacuum workers and backends come and go during a run, and a worker that exited
// between two readings would otherwise take its CPU with it (a run once read -1 µs per request).
import { readdirSync, readFileSync } from 'node:fs';
import { cpuSeconds } from './cpu.js';

export type ServiceName = 'redis' | 'postgres';

const NAMES: Readonly<Record<string, ServiceName>> = {
  'redis-server': 'redis',
  'valkey-server': 'redis',
  postgres: 'postgres',
};

/** CPU seconds used so far by each service's processes (null where none was found). */
export function servicesCpu(): Record<ServiceName, number | null> {
  const out: Record<ServiceName, number | null> = { redis: null, postgres: null };
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const pid of pids) {
    let comm: string;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    const service = NAMES[comm];
    if (!service) continue;
    const seconds = cpuSeconds(Number(pid), true);
    if (seconds !== null) out[service] = (out[service] ?? 0) + seconds;
  }
  return out;
}
