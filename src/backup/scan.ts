// Walks a backup file's lines in order, checking its structure, row counts and checksum; hands each
// table and row to the caller. The checksum is known only at the trailer, so a caller that writes
// rows does so inside a transaction that the failure at the end rolls back.
import { createHash } from 'node:crypto';
import {
  type BackupHeader,
  type BackupTrailer,
  type DbValue,
  damaged,
  decodeValue,
  parseBodyLine,
  parseHeader,
  type TableShape,
} from './format.js';

export interface ScanHandlers {
  row?(table: TableShape, values: DbValue[]): Promise<void>;
  tableEnd?(table: TableShape): Promise<void>;
}

export interface ScanResult {
  readonly header: BackupHeader;
  readonly trailer: BackupTrailer;
}

export async function scanBackup(
  lines: AsyncIterable<string>,
  handlers: ScanHandlers = {},
): Promise<ScanResult> {
  const hash = createHash('sha256');
  let header: BackupHeader | null = null;
  let trailer: BackupTrailer | null = null;
  let table: TableShape | null = null;
  let tableIndex = 0;
  let count = 0;
  const counts: Record<string, number> = {};
  const endTable = async () => {
    if (table === null) return;
    counts[table.name] = count;
    await handlers.tableEnd?.(table);
  };
  for await (const line of lines) {
    if (trailer !== null) throw damaged('data after the trailer');
    if (header === null) {
      header = parseHeader(line);
      hash.update(`${line}\n`, 'utf8');
      continue;
    }
    const body = parseBodyLine(line);
    if (body.kind === 'trailer') {
      await endTable();
      if (body.trailer.sha256 !== hash.digest('hex')) throw damaged('its checksum does not match');
      checkCounts(header, body.trailer, counts);
      trailer = body.trailer;
      continue;
    }
    hash.update(`${line}\n`, 'utf8');
    if (body.kind === 'table') {
      await endTable();
      table = header.tables[tableIndex++] ?? null;
      if (table === null || table.name !== body.name) throw damaged(`table ${body.name} out of order`);
      count = 0;
      continue;
    }
    if (table === null) throw damaged('a row before any table');
    const shape: TableShape = table;
    if (body.values.length !== shape.columns.length)
      throw damaged(`a row of ${shape.name} has the wrong width`);
    const values = body.values.map((v, i) => decodeValue(v, `${shape.name}.${shape.columns[i]}`));
    count++;
    await handlers.row?.(shape, values);
  }
  if (header === null) throw damaged('it is empty');
  if (trailer === null) throw damaged('it is cut short: no trailer');
  return { header, trailer };
}

function checkCounts(header: BackupHeader, trailer: BackupTrailer, counts: Record<string, number>): void {
  const names = header.tables.map((t) => t.name);
  if (Object.keys(trailer.rows).length !== names.length) throw damaged('the trailer lists other tables');
  for (const name of names) {
    if (counts[name] === undefined) throw damaged(`table ${name} is missing`);
    if (trailer.rows[name] !== counts[name]) throw damaged(`the row count of ${name} does not match`);
  }
}
