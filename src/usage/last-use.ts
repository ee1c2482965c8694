// Last-use times of keys and credentials, gathered in memory and written every few seconds:
// informational, so not worth a statement per request on the hot path (a crash loses at most the
// last interval). On SQLite the writes go in short synchronous chunks of prepared statements, so the
// ledger's own commits never wait long behind them.
import type { Db } from '../db/connect.js';
import { writeTransaction } from '../db/tx.js';

const CHUNK = 256;

export function createLastUseTracker(db: Db, intervalMs = 5000) {
  let keys = new Map<string, number>();
  let credentials = new Map<string, number>();
  let running: Promise<void> | null = null;
  const timer = setInterval(() => void flush().catch(() => {}), intervalMs);
  timer.unref();
  const sqlite = db.sqlite;
  const touch = sqlite
    ? {
        key: sqlite.prepare('update gateway_keys set last_used_at = ? where id = ?'),
        credential: sqlite.prepare('update credentials set last_used_at = ? where id = ?'),
      }
    : null;

  function note(keyId: string, credentialId: string | null, at: number): void {
    if ((keys.get(keyId) ?? 0) < at) keys.set(keyId, at);
    if (credentialId !== null && (credentials.get(credentialId) ?? 0) < at) credentials.set(credentialId, at);
  }

  function flush(): Promise<void> {
    running ??= write().finally(() => {
      running = null;
    });
    return running;
  }

  async function write(): Promise<void> {
    if (keys.size === 0 && credentials.size === 0) return;
    const updates: Array<['key' | 'credential', string, number]> = [];
    for (const [id, at] of keys) updates.push(['key', id, at]);
    for (const [id, at] of credentials) updates.push(['credential', id, at]);
    keys = new Map();
    credentials = new Map();
    for (let i = 0; i < updates.length; i += CHUNK) {
      const chunk = updates.slice(i, i + CHUNK);
      if (sqlite && touch) {
        while (sqlite.inTransaction) await new Promise<void>((resolve) => setImmediate(resolve));
        sqlite
          .transaction(() => {
            for (const [kind, id, at] of chunk) touch[kind].run(at, id);
          })
          .immediate();
        await new Promise<void>((resolve) => setImmediate(resolve));
      } else {
        await writeTransaction(db, async (tx) => {
          for (const [kind, id, at] of chunk) {
            const table = kind === 'key' ? 'gateway_keys' : 'credentials';
            await tx.updateTable(table).set({ last_used_at: at }).where('id', '=', id).execute();
          }
        });
      }
    }
  }

  async function close(): Promise<void> {
    clearInterval(timer);
    await flush();
    // Notes taken while that write ran.
    await flush();
  }

  return { note, flush, close };
}
