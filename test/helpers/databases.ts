// The databases a storage test runs on: SQLite in a throw-away directory always, and PostgreSQL in a
// throw-away schema when TOLLGATE_TEST_DATABASE_URL names a server. For `describe.each(...)('… on $name')`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Db, openDatabase } from '../../src/db/connect.js';
import { createPgSchema, PG_URL } from './pg.js';

export interface DatabaseTarget {
  name: 'sqlite' | 'postgres';
  /** A fresh, empty database (no migrations run) and how to close and remove it. */
  open(): Promise<{ db: Db; close(): Promise<void> }>;
}

export function databaseTargets(): DatabaseTarget[] {
  const targets: DatabaseTarget[] = [
    {
      name: 'sqlite',
      open: async () => {
        const dir = mkdtempSync(join(tmpdir(), 'tollgate-db-'));
        const db = openDatabase({ kind: 'sqlite', path: join(dir, 'tollgate.db') });
        return {
          db,
          close: async () => {
            await db.close();
            rmSync(dir, { recursive: true, force: true });
          },
        };
      },
    },
  ];
  const url = PG_URL;
  if (url)
    targets.push({
      name: 'postgres',
      open: async () => {
        const schema = await createPgSchema(url);
        const db = openDatabase({ kind: 'postgres', url: schema.url });
        return {
          db,
          close: async () => {
            await db.close();
            await schema.drop();
          },
        };
      },
    });
  return targets;
}
