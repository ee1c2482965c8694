// Printing results: JSON for scripts (--json), tables and short lines for people.
import Table from 'cli-table3';
import type { Io } from './io.js';

export function printJson(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printTable(
  io: Io,
  head: string[],
  rows: ReadonlyArray<ReadonlyArray<string | number | null>>,
): void {
  if (rows.length === 0) {
    io.stdout.write('(none)\n');
    return;
  }
  const table = new Table({ head, style: { head: [], border: [] } });
  for (const row of rows) table.push(row.map((cell) => (cell === null ? '-' : String(cell))));
  io.stdout.write(`${table.toString()}\n`);
}

export function printLines(io: Io, lines: string[]): void {
  io.stdout.write(`${lines.join('\n')}\n`);
}

export function isoTime(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function shortTime(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
