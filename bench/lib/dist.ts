// The program's own modules, loaded from dist/ at run time (the bench does not compile src/): callers
// declare the shape they use, and a missing export is reported instead of failing later.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isRecord, ROOT } from './util.js';

/** `export function NAME` of `dist/RELATIVE`, typed as the caller declares it. */
export async function distFunction<T>(relative: string, name: string): Promise<T> {
  const mod: unknown = await import(pathToFileURL(join(ROOT, 'dist', relative)).href);
  if (!isRecord(mod)) throw new Error(`dist/${relative}: not a module`);
  const value = mod[name];
  if (typeof value !== 'function') {
    throw new Error(`dist/${relative} exports no function ${name} (run npm run build)`);
  }
  return value as T;
}
