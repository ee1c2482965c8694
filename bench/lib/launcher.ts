// The node arguments of the shipped launcher: the first line of bin/tollgate.js,
// `#!/usr/bin/env -S node --flag=value …`. The bench runs Tollgate with them (it measures the server as
// users run it) and `test/launcher.test.ts` checks `npm start` carries the same ones.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The `--flag=value` arguments of the launcher in `root`/bin/tollgate.js, in order. */
export function launcherNodeArgs(root: string): string[] {
  const first = readFileSync(join(root, 'bin', 'tollgate.js'), 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node((?: --[\w-]+=\S+)*)$/.exec(first);
  if (!m) throw new Error(`bin/tollgate.js: unexpected first line ${JSON.stringify(first)}`);
  return (m[1] ?? '').split(' ').filter(Boolean);
}
