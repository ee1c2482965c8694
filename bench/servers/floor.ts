// The floor of a durable ledger on PostgreSQL at one connection: the pass-through proxy's work (body
// read whole, one undici Pool behind) plus one durable one-row insert (a prepared statement, committed
// before the answer is sent), and nothing else. `node floor.js UPSTREAM_URL DATABASE_URL` (the URL's
// `options` may set a search_path); the table is created if missing. Prints `listening on URL`.
// What it adds over the proxy is what any gateway that makes a record durable in PostgreSQL before the
// last byte pays on this machine, before any work of its own (bench/micro-floor.ts).
import './guard.js';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { Pool } from 'undici';

const [upstream, databaseUrl] = process.argv.slice(2);
if (!upstream || !databaseUrl) {
  process.stderr.write('usage: floor.js UPSTREAM_URL DATABASE_URL\n');
  process.exit(2);
}

const pool = new Pool(upstream, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
const db = new pg.Client({ connectionString: databaseUrl });
await db.connect();
await db.query('create table if not exists floor_records (id text primary key, at bigint, cost bigint)');
let seq = 0;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const server = createServer((req, res) => {
  void (async () => {
    const body = await readBody(req);
    const answer = await pool.request({
      path: req.url ?? '/',
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'anthropic-version': '2023-06-01',
        'x-api-key': String(req.headers['x-api-key'] ?? ''),
      },
      body,
    });
    const bytes = Buffer.from(await answer.body.arrayBuffer());
    await db.query({
      name: 'floor_insert',
      text: 'insert into floor_records values ($1, $2, $3)',
      values: [`${process.pid}_${++seq}`, Date.now(), 35],
    });
    res.writeHead(answer.statusCode, { 'content-type': 'application/json', 'content-length': bytes.length });
    res.end(bytes);
  })().catch((error: unknown) => {
    res.writeHead(502).end(String(error));
  });
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
});
