// The dashboard's built files (dist/web, made by scripts/build-web.mjs during npm install), read once
// at start and kept in memory with their gzip and brotli forms. Names carry a content hash, so they
// are cached for a year; the shell that names them is never cached.
import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

export interface Asset {
  readonly type: string;
  readonly raw: Buffer;
  readonly gzip: Buffer;
  readonly br: Buffer;
}

export interface DashboardAssets {
  /** The shell's `<script>` and stylesheet, or null when the dashboard was not built. */
  readonly script: string | null;
  readonly style: string | null;
  readonly files: ReadonlyMap<string, Asset>;
}

const TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** The repository root: this file is src/http/… when run by the tests, dist/http/… when built. */
const ROOT = join(import.meta.dirname, '..', '..');
export const WEB_DIR = join(ROOT, 'dist', 'web');

const loaded = new Map<string, DashboardAssets>();

/** The built files under `dir`, read and compressed once per process. */
export function loadDashboardAssets(dir: string = WEB_DIR): DashboardAssets {
  const known = loaded.get(dir);
  if (known) return known;
  const assets = readAssets(dir);
  loaded.set(dir, assets);
  return assets;
}

function readAssets(dir: string): DashboardAssets {
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) return { script: null, style: null, files: new Map() };
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    script: string;
    style: string;
    files: string[];
  };
  const files = new Map<string, Asset>();
  for (const name of manifest.files) {
    const type = TYPES[extname(name)];
    if (!type || !/^[\w.-]+$/.test(name)) continue;
    const raw = readFileSync(join(dir, 'assets', name));
    files.set(name, {
      type,
      raw,
      gzip: gzipSync(raw, { level: 9 }),
      br: brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
    });
  }
  return { script: manifest.script, style: manifest.style, files };
}

/** The best encoding the client accepts: brotli, then gzip, else none. */
export function pickEncoding(acceptEncoding: string | undefined): 'br' | 'gzip' | null {
  const accepted = (acceptEncoding ?? '')
    .split(',')
    .map((part) => part.trim().split(';'))
    .filter(([, q]) => q === undefined || !/^q=0(\.0*)?$/.test(q.trim()))
    .map(([name]) => (name ?? '').trim().toLowerCase());
  if (accepted.includes('br')) return 'br';
  if (accepted.includes('gzip')) return 'gzip';
  return null;
}
