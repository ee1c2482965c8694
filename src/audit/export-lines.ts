// The lines of an audit export file, read in chunks (never the whole file in memory) with a bound on
// each line, so a hostile or damaged file cannot take the verifier's memory. A line over the bound is
// handed on as "" (which no verifier takes for an entry); the final newline ends the last line.
import { createReadStream } from 'node:fs';
import { AppError } from '../lib/errors.js';

/** Far above any stored entry (audit details are small, bounded objects). */
export const MAX_EXPORT_LINE_BYTES = 1 << 20;

export async function* exportLines(path: string, maxBytes = MAX_EXPORT_LINE_BYTES): AsyncGenerator<string> {
  const stream = createReadStream(path, { highWaterMark: 64 * 1024 });
  let parts: Buffer[] = [];
  let size = 0;
  let tooLong = false;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(10, start);
        const end = nl < 0 ? chunk.length : nl;
        if (!tooLong) {
          size += end - start;
          if (size > maxBytes) {
            tooLong = true;
            parts = [];
          } else parts.push(chunk.subarray(start, end));
        }
        if (nl < 0) break;
        yield tooLong ? '' : Buffer.concat(parts).toString('utf8');
        parts = [];
        size = 0;
        tooLong = false;
        start = nl + 1;
      }
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new AppError(code === 'ENOENT' ? 'not_found' : 'invalid_input', `cannot read ${path}: ${code}`);
  }
  // Text after the last newline: a line cut short (or a file written without the final newline).
  if (tooLong || size > 0) yield tooLong ? '' : Buffer.concat(parts).toString('utf8');
}
