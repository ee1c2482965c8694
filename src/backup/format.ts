// The backup file (`tollgate backup`): engine-independent JSON lines. A header line (format version,
// the migrations the data was written under, source engine, time, the master key's fingerprint and
// every table's columns), then per table a `{"table": …}` line followed by one JSON array per row,
// then a trailer with each table's row count and a SHA-256 over every byte before the trailer.
// Sealed secrets are copied as they are stored (base64 of the bytes): they stay under the master key.
import { AppError } from '../lib/errors.js';

export const BACKUP_FORMAT = 'tollgate-backup';
export const BACKUP_VERSION = 1;
/** Longest line a reader accepts; a row of Tollgate's tables is a few KiB at most. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

export type Engine = 'sqlite' | 'postgres';

export interface TableShape {
  readonly name: string;
  readonly columns: readonly string[];
}

export interface BackupHeader {
  readonly format: typeof BACKUP_FORMAT;
  readonly version: typeof BACKUP_VERSION;
  readonly engine: Engine;
  /** ISO 8601 time of the snapshot. */
  readonly created_at: string;
  /** The applied migrations, in order: the schema the rows belong to. */
  readonly migrations: readonly string[];
  readonly master_key_fingerprint: string;
  /** In restore order: a table comes after the tables its foreign keys name. */
  readonly tables: readonly TableShape[];
}

export interface BackupTrailer {
  readonly end: typeof BACKUP_FORMAT;
  readonly rows: Readonly<Record<string, number>>;
  readonly sha256: string;
}

/** A column value as stored in the file: binary values as `{"b64": …}`, everything else as JSON. */
export type FileValue = string | number | null | { b64: string };
export type DbValue = string | number | null | Buffer;

export const damaged = (what: string) =>
  new AppError('invalid_input', `the backup file is damaged (${what}); nothing was restored`);

/** One database value for the file; only the types Tollgate's tables hold are accepted. */
export function encodeValue(value: unknown, at: string): FileValue {
  if (value === null || typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (Buffer.isBuffer(value)) return { b64: value.toString('base64') };
  if (value instanceof Uint8Array) return { b64: Buffer.from(value).toString('base64') };
  throw new AppError('internal', `${at}: a value of type ${typeof value} cannot be backed up`);
}

export function decodeValue(value: unknown, at: string): DbValue {
  if (value === null || typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (isRecord(value) && typeof value.b64 === 'string' && Object.keys(value).length === 1) {
    const bytes = Buffer.from(value.b64, 'base64');
    if (bytes.toString('base64') !== value.b64) throw damaged(`${at}: binary value is not base64`);
    return bytes;
  }
  throw damaged(`${at}: unexpected value`);
}

export function headerLine(header: BackupHeader): string {
  return `${JSON.stringify(header)}\n`;
}

export function trailerLine(trailer: BackupTrailer): string {
  return `${JSON.stringify(trailer)}\n`;
}

/** Parses the header line (its meaning is checked once the whole file has verified). */
export function parseHeader(line: string): BackupHeader {
  const raw = parseJson(line, 'header');
  if (!isRecord(raw) || raw.format !== BACKUP_FORMAT)
    throw new AppError('invalid_input', 'not a Tollgate backup file (no backup header on its first line)');
  if (raw.version !== BACKUP_VERSION) {
    const newer = typeof raw.version === 'number' && raw.version > BACKUP_VERSION;
    throw new AppError(
      'invalid_input',
      `backup format version ${String(raw.version)} is not supported: this Tollgate reads version ${BACKUP_VERSION}${newer ? ' (the file was written by a newer Tollgate; upgrade to restore it)' : ''}`,
    );
  }
  const migrations = stringList(raw.migrations, 'migrations');
  if (raw.engine !== 'sqlite' && raw.engine !== 'postgres') throw damaged('header: unknown engine');
  if (typeof raw.created_at !== 'string' || !Number.isFinite(Date.parse(raw.created_at)))
    throw damaged('header: created_at is not a time');
  if (typeof raw.master_key_fingerprint !== 'string') throw damaged('header: no master key fingerprint');
  if (!Array.isArray(raw.tables)) throw damaged('header: no table list');
  const tables = raw.tables.map((t: unknown, i) => {
    if (!isRecord(t) || typeof t.name !== 'string') throw damaged(`header: table ${i} has no name`);
    return { name: t.name, columns: stringList(t.columns, `${t.name} columns`) };
  });
  return {
    format: BACKUP_FORMAT,
    version: BACKUP_VERSION,
    engine: raw.engine,
    created_at: raw.created_at,
    migrations,
    master_key_fingerprint: raw.master_key_fingerprint,
    tables,
  };
}

/** Refuses rows of a schema this program does not know; `known` is its migrations, in order. */
export function checkSchema(header: BackupHeader, known: readonly string[]): void {
  const { migrations } = header;
  const unknown = migrations.find((m) => !known.includes(m));
  if (unknown !== undefined || migrations.some((m, i) => known[i] !== m)) {
    throw new AppError(
      'invalid_input',
      `the backup was written under a newer database schema (${unknown ?? migrations.at(-1) ?? ''}) than this Tollgate knows; upgrade Tollgate to restore it`,
    );
  }
}

/** A body line: the start of a table, a row, or the trailer. */
export type BodyLine =
  | { kind: 'table'; name: string }
  | { kind: 'row'; values: unknown[] }
  | { kind: 'trailer'; trailer: BackupTrailer };

export function parseBodyLine(line: string): BodyLine {
  const raw = parseJson(line, 'row');
  if (Array.isArray(raw)) return { kind: 'row', values: raw };
  if (isRecord(raw) && typeof raw.table === 'string') return { kind: 'table', name: raw.table };
  if (isRecord(raw) && raw.end === BACKUP_FORMAT && typeof raw.sha256 === 'string' && isRecord(raw.rows)) {
    const rows: Record<string, number> = {};
    for (const [name, count] of Object.entries(raw.rows)) {
      if (typeof count !== 'number' || !Number.isSafeInteger(count)) throw damaged('trailer: bad row count');
      rows[name] = count;
    }
    return { kind: 'trailer', trailer: { end: BACKUP_FORMAT, rows, sha256: raw.sha256 } };
  }
  throw damaged('unexpected line');
}

function parseJson(line: string, what: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw damaged(`${what} line is not JSON`);
  }
}

function stringList(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
    throw damaged(`header: ${what} is not a list of names`);
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
