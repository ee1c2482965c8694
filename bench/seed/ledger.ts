// `node dist/bench/bench/seed/ledger.js DB_FILE KEY_ID ROWS` (server stopped): appends ROWS realistic
// usage rows — spread over the last 60 days, a mix of models, streaming and not, a few errors, random
// ids like the gateway's — all charged to the bench key, its user and team (the worst case for any
// per-key or per-user query). They are written by the compiled ledger's own batch pieces
// (dist/usage/ledger-batch.js `buildBatch` and dist/usage/sqlite-batch.js `createSqliteBatchWriter`),
// one transaction per batch, so the rows, the daily `spend` counters and the 15-minute usage rollups
// come out exactly as the gateway writes them.
import Database from 'better-sqlite3';
import { distFunction } from '../lib/dist.js';
import { isRecord, log } from '../lib/util.js';
import { pickModel, type UsageRecord, usageRecord } from './usage-records.js';

type BuildBatch = (records: readonly UsageRecord[], orgId: string) => object;
type CreateSqliteBatchWriter = (sqlite: Database.Database) => { write(batch: object): void };

const [dbFileArg, keyIdArg, rowsText] = process.argv.slice(2);
const total = Number(rowsText);
if (!dbFileArg || !keyIdArg || !Number.isSafeInteger(total) || total < 1) {
  log('usage: ledger.js DB_FILE KEY_ID ROWS');
  process.exit(2);
}
const dbFile: string = dbFileArg;
const keyId: string = keyIdArg;

const buildBatch = await distFunction<BuildBatch>('usage/ledger-batch.js', 'buildBatch');
const createWriter = await distFunction<CreateSqliteBatchWriter>(
  'usage/sqlite-batch.js',
  'createSqliteBatchWriter',
);

const db = new Database(dbFile, { fileMustExist: true, timeout: 5_000 });
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
// A large page cache for this connection only: random times make every insert a random B-tree write,
// and 1,000,000 of them crawl through the default 2 MB cache.
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
const who = { keyId, userId, teamId, credentialId };

const DAY = 86_400_000;
const now = Date.now();
const from = now - 60 * DAY;
const writer = createWriter(db);

const BATCH = 20_000;
const started = Date.now();
for (let done = 0; done < total; done += BATCH) {
  const records: UsageRecord[] = [];
  for (let i = 0; i < Math.min(BATCH, total - done); i++) {
    const at = from + Math.floor(Math.random() * (now - 60_000 - from));
    records.push(usageRecord(at, who, pickModel(Math.random()), 0.01));
  }
  writer.write(buildBatch(records, orgId));
  if ((done + BATCH) % 200_000 === 0)
    log(`  … ${done + BATCH} rows (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

// Leave the WAL folded back into the main file. (No ANALYZE: Tollgate's own databases never get one,
// so the query plans measured are the ones a real 1,000,000-row installation would use.)
db.pragma('wal_checkpoint(TRUNCATE)');
db.close();
