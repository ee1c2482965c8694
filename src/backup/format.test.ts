import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  BACKUP_FORMAT,
  type BackupHeader,
  checkSchema,
  decodeValue,
  encodeValue,
  headerLine,
  parseHeader,
  trailerLine,
} from './format.js';
import { scanBackup } from './scan.js';
import { parentsFirst } from './tables.js';

const header: BackupHeader = {
  format: BACKUP_FORMAT,
  version: 1,
  engine: 'sqlite',
  created_at: '2026-12-07T00:00:00.000Z',
  migrations: ['0001-a', '0002-b'],
  master_key_fingerprint: '0123456789abcdef',
  tables: [
    { name: 'teams', columns: ['id', 'name'] },
    { name: 'credentials', columns: ['id', 'ciphertext'] },
  ],
};

/** A file's lines with a correct trailer unless `sha` is given. */
function fileLines(body: string[], sha?: string, rows = { teams: 1, credentials: 1 }): string[] {
  const head = [headerLine(header).trimEnd(), ...body];
  const digest = createHash('sha256')
    .update(head.map((l) => `${l}\n`).join(''))
    .digest('hex');
  return [...head, trailerLine({ end: BACKUP_FORMAT, rows, sha256: sha ?? digest }).trimEnd()];
}

const body = [
  '{"table":"teams"}',
  '["tm_1","core"]',
  '{"table":"credentials"}',
  '["cred_1",{"b64":"AAEC/w=="}]',
];

async function* from(lines: string[]): AsyncGenerator<string> {
  yield* lines;
}

describe('values', () => {
  it('carries binary values as base64 and everything else as JSON', () => {
    const sealed = Buffer.from([0, 1, 2, 255]);
    expect(encodeValue(sealed, 'c.x')).toEqual({ b64: 'AAEC/w==' });
    expect(decodeValue({ b64: 'AAEC/w==' }, 'c.x')).toEqual(sealed);
    expect(encodeValue(true, 'c.x')).toBe(1);
    for (const v of [null, 'text', 42, 1_765_000_000_000])
      expect(decodeValue(encodeValue(v, 'c.x'), 'c.x')).toBe(v);
  });

  it('refuses what it cannot carry faithfully', () => {
    expect(() => encodeValue(new Date(), 'c.x')).toThrow(/cannot be backed up/);
    expect(() => encodeValue(Number.NaN, 'c.x')).toThrow(/cannot be backed up/);
    expect(() => decodeValue({ b64: 'AAEC/w=' }, 'c.x')).toThrow(/not base64/);
    expect(() => decodeValue({ b64: 'AA==', extra: 1 }, 'c.x')).toThrow(/unexpected value/);
    expect(() => decodeValue([1], 'c.x')).toThrow(/unexpected value/);
  });
});

describe('header', () => {
  it('reads its own header back and refuses other files and versions', () => {
    expect(parseHeader(headerLine(header))).toEqual(header);
    expect(() => parseHeader('{"format":"tollgate-credentials"}')).toThrow(/not a Tollgate backup/);
    expect(() => parseHeader(headerLine({ ...header, version: 2 } as unknown as BackupHeader))).toThrow(
      /written by a newer Tollgate/,
    );
  });

  it('accepts the schema this program knows or an older one, never a newer one', () => {
    expect(() => checkSchema(header, ['0001-a', '0002-b', '0003-c'])).not.toThrow();
    expect(() => checkSchema(header, ['0001-a', '0002-b'])).not.toThrow();
    expect(() => checkSchema(header, ['0001-a'])).toThrow(/newer database schema \(0002-b\)/);
    expect(() => checkSchema(header, ['0002-b', '0001-a'])).toThrow(/newer database schema/);
  });
});

describe('scan', () => {
  it('hands every row over in order and checks the trailer (control)', async () => {
    const rows: unknown[] = [];
    const { trailer } = await scanBackup(from(fileLines(body)), {
      row: async (table, values) => {
        rows.push([table.name, ...values]);
      },
    });
    expect(trailer.rows).toEqual({ teams: 1, credentials: 1 });
    expect(rows).toEqual([
      ['teams', 'tm_1', 'core'],
      ['credentials', 'cred_1', Buffer.from([0, 1, 2, 255])],
    ]);
  });

  it('refuses a wrong checksum, wrong counts, missing trailer, extra lines and misplaced tables', async () => {
    await expect(scanBackup(from(fileLines(body, '00'.repeat(32))))).rejects.toThrow(/checksum/);
    await expect(scanBackup(from(fileLines(body, undefined, { teams: 2, credentials: 1 })))).rejects.toThrow(
      /row count of teams/,
    );
    await expect(scanBackup(from(fileLines(body).slice(0, -1)))).rejects.toThrow(/cut short/);
    await expect(scanBackup(from([...fileLines(body), '[]']))).rejects.toThrow(/after the trailer/);
    const swapped = [body[2], body[3], body[0], body[1]] as string[];
    await expect(scanBackup(from(fileLines(swapped)))).rejects.toThrow(/out of order/);
    const wide = [body[0], '["tm_1","core","x"]', body[2], body[3]] as string[];
    await expect(scanBackup(from(fileLines(wide)))).rejects.toThrow(/wrong width/);
    await expect(scanBackup(from([]))).rejects.toThrow(/empty/);
  });
});

describe('parentsFirst', () => {
  it('puts each table after the tables it references', () => {
    const parents = new Map([
      ['gateway_keys', ['users', 'credentials']],
      ['users', ['teams']],
      ['teams', ['teams']],
    ]);
    const order = parentsFirst(['audit_log', 'gateway_keys', 'users', 'credentials', 'teams'], parents);
    expect(order).toHaveLength(5);
    const at = (n: string) => order.indexOf(n);
    expect(at('teams')).toBeLessThan(at('users'));
    expect(at('users')).toBeLessThan(at('gateway_keys'));
    expect(at('credentials')).toBeLessThan(at('gateway_keys'));
  });
});
