// The usage ledger's commit on PostgreSQL, one record at a time (the latency a one-connection request
// waits for before its last byte), beside a plain durable insert and a round trip on the same server:
// where the ledger's share of the added p50 goes. Usage: node dist/bench/bench/micro-ledger.js
// [postgres-url] [records] (default postgres://postgres@127.0.0.1:5432/test, 2000).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase } from '../src/db/connect.js';
import { migrateToLatest } from '../src/db/migrate.js';
import { createLedger } from '../src/usage/ledger.js';
import { benchRecord } from './lib/usage-record.js';

const base = process.argv[2] ?? 'postgres://postgres@127.0.0.1:5432/test';
const total = Number(process.argv[3] ?? 2_000);
const schema = `micro_ledger_${randomBytes(4).toString('hex')}`;

function record(i: number) {
  return benchRecord(`req_micro_${i}`, {
    key_id: 'key_a',
    user_id: 'usr_a',
    team_id: 'team_a',
    credential_id: 'cred_a',
  });
}

async function timed(label: string, n: number, step: (i: number) => Promise<unknown>): Promise<void> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await step(i);
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const at = (q: number) => (ms[Math.floor(q * (ms.length - 1))] as number).toFixed(3);
  console.log(`${label.padEnd(44)} p50 ${at(0.5)} ms  p90 ${at(0.9)} ms  p99 ${at(0.99)} ms`);
}

const admin = new pg.Client({ connectionString: base });
await admin.connect();
await admin.query(`create schema ${schema}`);
const url = new URL(base);
url.searchParams.set('options', `-c search_path=${schema}`);
const db = openDatabase({ kind: 'postgres', url: url.toString() });
try {
  await migrateToLatest(db);
  const ledger = createLedger(db, 'org_micro');
  await timed('ledger append (record + rollups + spend)', total, (i) => ledger.append(record(i)));
  const plain = new pg.Client({ connectionString: url.toString() });
  await plain.connect();
  await plain.query('create table micro_plain (id text primary key, at bigint, cost bigint)');
  await timed('plain durable insert (one row)', total, (i) =>
    plain.query({
      name: 'plain',
      text: 'insert into micro_plain values ($1, $2, $3)',
      values: [`r${i}`, i, 35],
    }),
  );
  await timed('round trip (select $1)', total, (i) =>
    plain.query({ name: 'sel', text: 'select $1::int', values: [i] }),
  );
  await plain.end();
  await ledger.close();
} finally {
  await db.close();
  await admin.query(`drop schema ${schema} cascade`);
  await admin.end();
}
