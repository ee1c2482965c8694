// Last-use times of keys and credentials, gathered in memory and written every few seconds in one
// transaction: informational, so not worth a statement per request on the hot path (a crash loses at
// most the last interval).
import type { Db } from '../db/connect.js';
import { writeTransaction } from '../db/tx.js';

export function createLastUseTracker(db: Db, intervalMs = 5000) {
  let keys = new Map<string, number>();
  let credentials = new Map<string, number>();
  const timer = setInterval(() => void flush().catch(() => {}), intervalMs);
  timer.unref();

  function note(keyId: string, credentialId: string | null, at: number): void {
    if ((keys.get(keyId) ?? 0) < at) keys.set(keyId, at);
    if (credentialId !== null && (credentials.get(credentialId) ?? 0) < at) credentials.set(credentialId, at);
  }

  async function flush(): Promise<void> {
    if (keys.size === 0 && credentials.size === 0) return;
    const k = keys;
    const c = credentials;
    keys = new Map();
    credentials = new Map();
    await writeTransaction(db, async (tx) => {
      for (const [id, at] of k)
        await tx.updateTable('gateway_keys').set({ last_used_at: at }).where('id', '=', id).execute();
      for (const [id, at] of c)
        await tx.updateTable('credentials').set({ last_used_at: at }).where('id', '=', id).execute();
    });
  }

  async function close(): Promise<void> {
    clearInterval(timer);
    await flush();
  }

  return { note, flush, close };
}
