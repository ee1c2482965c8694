// Builds the dashboard (web/src) into dist/web: one ES module bundle and one stylesheet with
// content-hashed names, and manifest.json naming them. Runs in `npm install` (prepare) and before the
// tests; the server reads the manifest and serves the files with long cache lifetimes.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
const assets = join(out, 'assets');

await rm(out, { recursive: true, force: true });
await mkdir(assets, { recursive: true });

const result = await build({
  entryPoints: { app: join(root, 'web', 'src', 'main.tsx') },
  bundle: true,
  format: 'esm',
  target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
  minify: true,
  // Production Preact: no debug hooks, and nothing that reads process.env at run time.
  define: { 'process.env.NODE_ENV': '"production"' },
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  outdir: assets,
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
  tsconfig: join(root, 'web', 'tsconfig.json'),
});

const files = await readdir(assets);
const find = (prefix, ext) => {
  const name = files.find((f) => f.startsWith(`${prefix}-`) && f.endsWith(ext));
  if (!name) throw new Error(`build-web: no ${prefix}*${ext} in ${assets}`);
  return basename(name);
};
const manifest = { script: find('app', '.js'), style: find('app', '.css'), files };
await writeFile(join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(
  `dashboard built: ${manifest.script}, ${manifest.style} (${Math.round(bytes / 1024)} KiB before compression)`,
);
