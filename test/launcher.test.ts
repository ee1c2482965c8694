// The launcher's V8 settings: one set, in bin/tollgate.js's `#!/usr/bin/env -S node …` line and in
// `npm start`, accepted by this Node and in effect when the CLI runs through its own first line.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { launcherNodeArgs } from '../bench/lib/launcher.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'tollgate.js');

/** The launcher's arguments, read by the same parser the bench uses to run Tollgate as shipped. */
const shebangArgs = () => launcherNodeArgs(ROOT);

function startArgs(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const m = /^node((?: --[\w-]+=\S+)*) bin\/tollgate\.js serve$/.exec(pkg.scripts.start);
  if (!m) throw new Error(`unexpected start script: ${pkg.scripts.start}`);
  return (m[1] ?? '').split(' ').filter(Boolean);
}

describe('launcher V8 settings', () => {
  it('are the same in the first line of bin/tollgate.js and in npm start', () => {
    expect(shebangArgs()).toEqual(startArgs());
    expect(shebangArgs()).toEqual(['--max-semi-space-size=8', '--max-old-space-size=1024']);
  });

  it('take effect: a 1 GiB old generation and a 16 MB young generation', () => {
    const script =
      "const v8=require('v8');let a=[];for(let i=0;i<2e6;i++){a.push({i});if(a.length>1e4)a=[]}" +
      "const n=v8.getHeapSpaceStatistics().find(s=>s.space_name==='new_space');" +
      'console.log(JSON.stringify({limit:v8.getHeapStatistics().heap_size_limit,young:n.space_size}))';
    const out = execFileSync(process.execPath, [...shebangArgs(), '-e', script], { encoding: 'utf8' });
    const { limit, young } = JSON.parse(out) as { limit: number; young: number };
    expect(limit / 2 ** 20).toBeGreaterThan(1_000);
    expect(limit / 2 ** 20).toBeLessThan(1_100);
    // Two 8 MB semi-spaces once allocation has grown them (V8's default would be two of 16 MB).
    expect(young / 2 ** 20).toBeLessThanOrEqual(16);
  });

  it('runs through its own first line', () => {
    const out = execFileSync(BIN, ['--version'], { encoding: 'utf8' });
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
