// What a durable PostgreSQL commit before the last byte costs at one connection on this machine, with
// no gateway work at all: the pass-through proxy against the same proxy plus one durable one-row insert
// (servers/floor.ts), both in front of the fake upstream, one connection, interleaved rounds. The
// difference is the floor under the `shared-small-c1` scenario's added p50 (README, issue 17).
// Usage: node dist/bench/bench/micro-floor.js [postgres-url] [rounds] (default the test database, 3).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPgSchema } from '../test/helpers/pg.js';
import { fakeKey } from './lib/context.js';
import { type Managed, startLogged, stop, waitForListening } from './lib/procs.js';
import { writeBodies } from './lib/requests.js';
import { BENCH_DIST, median, ROOT } from './lib/util.js';
import { runWrk } from './lib/wrk.js';

const base = process.argv[2] ?? 'postgres://postgres@127.0.0.1:5432/test';
const rounds = Number(process.argv[3] ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'tollgate-floor-'));
const schema = await createPgSchema(base);
const started: Managed[] = [];

function server(name: string, file: string, args: readonly string[]): Promise<string> {
  const m = startLogged(name, process.execPath, [join(BENCH_DIST, 'servers', file), ...args], {
    env: process.env,
    cwd: ROOT,
    logFile: join(dir, `${name}.log`),
  });
  started.push(m);
  return waitForListening(m, 20_000);
}

try {
  const keysFile = join(dir, 'keys.txt');
  writeFileSync(keysFile, `${fakeKey(1)}\n`);
  const bodies = writeBodies(dir);
  const fake = await server('fake', 'fake.js', []);
  const paths = {
    proxy: await server('proxy', 'proxy.js', [fake]),
    'proxy + durable insert': await server('floor', 'floor.js', [fake, schema.url]),
  };
  const p50s: Record<string, number[]> = { proxy: [], 'proxy + durable insert': [] };
  for (let r = 0; r < rounds; r++) {
    for (const [name, url] of Object.entries(paths)) {
      const load = {
        url: `${url}/v1/messages`,
        connections: 1,
        threads: 1,
        mode: 'static' as const,
        keysFile,
        bodyFiles: [bodies.small],
      };
      await runWrk({ ...load, durationMs: 1_000 });
      const result = await runWrk({ ...load, durationMs: 5_000 });
      if (result.non2xx > 0 || result.ok === 0) throw new Error(`${name}: ${result.non2xx} answers not 2xx`);
      p50s[name]?.push(result.latencyMs.p50);
      console.log(`round ${r + 1}: ${name.padEnd(24)} p50 ${result.latencyMs.p50.toFixed(3)} ms`);
    }
  }
  const proxy = median(p50s.proxy ?? []);
  const floor = median(p50s['proxy + durable insert'] ?? []);
  console.log(`median p50: proxy ${proxy.toFixed(3)} ms, with the durable insert ${floor.toFixed(3)} ms`);
  console.log(`added by the durable commit alone: +${(floor - proxy).toFixed(3)} ms`);
} finally {
  for (const m of started) await stop(m);
  await schema.drop();
  rmSync(dir, { recursive: true, force: true });
}
