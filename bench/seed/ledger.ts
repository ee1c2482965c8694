// `node dist/bench/bench/seed/ledger.js DB_FILE KEY_ID ROWS` (server stopped): appends ROWS realistic
// usage rows to usage_records — spread over the last 60 days, a mix of models, streaming and not, a few
// errors, random ids like the gateway's — all charged to the bench key, its user and team (the worst case
// for any per-key or per-user query), and adds their cost to the `spend` counters exactly as the ledger
// writer does, so the budgets stay consistent with the rows. Batched inserts, one transaction per batch.
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { isRecord, log } from '../lib/util.js';

const [dbFileArg, keyIdArg, rowsText] = process.argv.slice(2);
const total = Number(rowsText);
if (!dbFileArg || !keyIdArg || !Number.isSafeInteger(total) || total < 1) {
  log('usage: ledger.js DB_FILE KEY_ID ROWS');
  process.exit(2);
}
const dbFile: string = dbFileArg;
const keyId: string = keyIdArg;

const db = new Database(dbFile, { fileMustExist: true, timeout: 5_000 });
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
// A large page cache for this connection only: random primary keys make every index insert a random
// B-tree write, and 1,000,000 of them crawl through the default 2 MB cache.
db.pragma('cache_size = -262144');

function text(row: unknown, column: string): string | null {
  return isRecord(row) && typeof row[column] === 'string' ? row[column] : null;
}

const keyRow: unknown = db.prepare('select user_id from gateway_keys where id = ?').get(keyId);
const userId = text(keyRow, 'user_id');
if (!userId) throw new Error(`no gateway key ${keyId}`);
const teamId = text(db.prepare('select team_id from users where id = ?').get(userId), 'team_id');
const credentialId = text(
  db.prepare("select id from credentials where provider = 'anthropic' and removed_at is null limit 1").get(),
  'id',
);
const orgId = text(db.prepare("select value from meta where key = 'org_id'").get(), 'value');
if (!orgId) throw new Error('no org_id in meta');

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
function randomId(prefix: string, length = 22): string {
  const bytes = randomBytes(length);
  let s = prefix;
  for (const b of bytes) s += ALPHABET[b % 62];
  return s;
}

// micro-USD per token (= USD per million tokens): input, output.
const MODELS: ReadonlyArray<{ id: string; share: number; input: number; output: number }> = [
  { id: 'claude-haiku-4-5', share: 0.5, input: 1, output: 5 },
  { id: 'claude-sonnet-4-6', share: 0.4, input: 3, output: 15 },
  { id: 'claude-opus-4-5', share: 0.1, input: 5, output: 25 },
];

function pickModel(r: number): (typeof MODELS)[number] {
  let acc = 0;
  for (const m of MODELS) {
    acc += m.share;
    if (r < acc) return m;
  }
  return MODELS[0] as (typeof MODELS)[number];
}

function int(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

const DAY = 86_400_000;
const now = Date.now();
const from = now - 60 * DAY;

const insert =
  db.prepare(`insert into usage_records (id, at, endpoint, key_id, user_id, team_id, service_user_id,
  credential_id, model, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens,
  cache_read_tokens, web_search_requests, cost_micro, saved_micro, latency_ms, status, outcome,
  upstream_request_id, stream, partial, estimated, attempts)
  values (?, ?, 'messages', ?, ?, ?, null, ?, ?, ?, ?, ?, 0, ?, 0, ?, ?, ?, ?, ?, ?, ?, 0, 0, 1)`);

/** Same periods as src/budgets/periods.ts: day, month (UTC), total. */
function periodStarts(at: number): Array<['day' | 'month' | 'total', number]> {
  const d = new Date(at);
  return [
    ['day', Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())],
    ['month', Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)],
    ['total', 0],
  ];
}

const spend = new Map<string, number>();
function addSpend(at: number, cost: number): void {
  if (cost === 0) return;
  const scopes: Array<[string, string | null]> = [
    ['key', keyId],
    ['user', userId],
    ['team', teamId],
    ['org', orgId],
  ];
  for (const [scope, id] of scopes) {
    if (id === null) continue;
    for (const [period, start] of periodStarts(at)) {
      const k = `${scope}\u0000${id}\u0000${period}\u0000${start}`;
      spend.set(k, (spend.get(k) ?? 0) + cost);
    }
  }
}

const BATCH = 20_000;
const started = Date.now();
const writeBatch = db.transaction((n: number) => {
  for (let i = 0; i < n; i++) {
    const at = from + Math.floor(Math.random() * (now - 60_000 - from));
    const model = pickModel(Math.random());
    const failed = Math.random() < 0.01;
    const stream = Math.random() < 0.6 ? 1 : 0;
    const input = failed ? 0 : int(20, 8_000);
    const output = failed ? 0 : int(5, 1_500);
    const cacheWrite = !failed && Math.random() < 0.1 ? int(1_024, 20_000) : 0;
    const cacheRead = !failed && Math.random() < 0.3 ? int(1_024, 50_000) : 0;
    const cost = Math.round(
      input * model.input +
        output * model.output +
        cacheWrite * model.input * 1.25 +
        cacheRead * model.input * 0.1,
    );
    const saved = Math.round(cacheRead * model.input * 0.9);
    const status = failed ? (Math.random() < 0.5 ? 429 : 529) : 200;
    insert.run(
      randomId('req_'),
      at,
      keyId,
      userId,
      teamId,
      credentialId,
      model.id,
      input,
      output,
      cacheWrite,
      cacheRead,
      cost,
      saved,
      int(150, stream ? 30_000 : 8_000),
      status,
      failed ? 'error' : 'ok',
      failed ? null : randomId('req_011C', 18),
      stream,
    );
    addSpend(at, cost);
  }
});

for (let done = 0; done < total; done += BATCH) {
  writeBatch(Math.min(BATCH, total - done));
  if ((done + BATCH) % 200_000 === 0)
    log(`  … ${done + BATCH} rows (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

const upsert = db.prepare(`insert into spend (scope_type, scope_id, period, period_start, spent_micro)
  values (?, ?, ?, ?, ?)
  on conflict (scope_type, scope_id, period, period_start) do update set spent_micro = spent_micro + excluded.spent_micro`);
db.transaction(() => {
  for (const [k, cost] of spend) {
    const [scope, id, period, start] = k.split('\u0000');
    upsert.run(scope, id, period, Number(start), cost);
  }
})();
// Leave the WAL folded back into the main file. (No ANALYZE: Tollgate's own databases never get one,
// so the query plans measured are the ones a real 1,000,000-row installation would use.)
db.pragma('wal_checkpoint(TRUNCATE)');
db.close();
