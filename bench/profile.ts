// Summarises a V8 CPU profile (`node --cpu-prof`, as written by `npm run bench -- --profile DIR`):
// self time by function and by file, so a hot path can be read without opening DevTools.
//
//   node dist/bench/bench/profile.js DIR/CPU.….cpuprofile [--top N] [--inclusive FILE-REGEXP]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function isProfile(value: unknown): value is CpuProfile {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return Array.isArray(v.nodes) && Array.isArray(v.samples) && Array.isArray(v.timeDeltas);
}

/** The path under the repository (or under node_modules) of a script URL; V8's own entries as they are. */
function shortFile(url: string): string {
  if (url === '') return '(native)';
  const path = url.replace(/^file:\/\//, '');
  const modules = path.lastIndexOf('/node_modules/');
  if (modules >= 0) return path.slice(modules + 1);
  const dist = path.indexOf('/dist/');
  return dist >= 0 ? path.slice(dist + 1) : path;
}

function table(title: string, totals: Map<string, number>, all: number, top: number): string {
  const rows = [...totals].sort((a, b) => b[1] - a[1]).slice(0, top);
  const lines = rows.map(([name, us]) => {
    const pct = ((100 * us) / all).toFixed(1).padStart(5);
    return `${pct}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`;
  });
  return `${title}\n${lines.join('\n')}`;
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '30' },
      inclusive: { type: 'string' },
    },
  });
  const file = positionals[0];
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/bench/profile.js FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  const top = Number(values.top);
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (!isProfile(parsed)) throw new Error(`${file} is not a V8 CPU profile`);
  const byId = new Map(parsed.nodes.map((node) => [node.id, node.callFrame]));
  const parent = new Map<number, number>();
  for (const node of parsed.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const pattern = values.inclusive === undefined ? null : new RegExp(values.inclusive);
  const inclusive = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let all = 0;
  let idle = 0;
  parsed.samples.forEach((id, i) => {
    const us = parsed.timeDeltas[i] ?? 0;
    const frame = byId.get(id);
    if (!frame) return;
    if (frame.functionName === '(idle)') {
      idle += us;
      return;
    }
    all += us;
    const where = shortFile(frame.url);
    const name = `${frame.functionName || '(anonymous)'}  ${where}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    byFile.set(where, (byFile.get(where) ?? 0) + us);
    if (pattern === null) return;
    // Every matching function on the sample's stack, counted once per sample.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at);
      if (!f || !pattern.test(f.url)) continue;
      const label = `${f.functionName || '(anonymous)'}  ${shortFile(f.url)}:${f.lineNumber + 1}`;
      if (seen.has(label)) continue;
      seen.add(label);
      inclusive.set(label, (inclusive.get(label) ?? 0) + us);
    }
  });
  process.stdout.write(
    `busy ${(all / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s\n\n` +
      `${table('self time by function', byFunction, all, top)}\n\n${table('self time by file', byFile, all, top)}\n`,
  );
  if (pattern !== null) {
    process.stdout.write(`\n${table(`inclusive time, files matching ${pattern}`, inclusive, all, top)}\n`);
  }
}

main();
