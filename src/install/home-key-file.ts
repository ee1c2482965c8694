// Replacing the home key file during a master-key rotation: the previous key is first kept in
// `master.key.v<N>` (N = its version), then the new key replaces `master.key` atomically (a temp
// file written 0600 and fsynced, renamed over, the directory fsynced). After a crash the home holds
// either the previous key in master.key (the rotation row gives the new one) or the new key with
// the previous one in the backup: every secret stays readable either way.
import { existsSync } from 'node:fs';
import { link, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { loadMasterKey, type MasterKey, writeKeyTemp } from '../crypto/master-key.js';
import { AppError } from '../lib/errors.js';
import { syncDirectory } from '../lib/sync-directory.js';
import { backupKeyPath } from './master-keys.js';

function keyText(master: MasterKey): string {
  return `${master.key.toString('base64')}\n`;
}

/** Makes the home key file hold `next`, keeping `previous` in its backup file. Idempotent. */
export async function replaceHomeKey(
  defaultFile: string,
  previous: MasterKey,
  next: MasterKey,
): Promise<string> {
  const backup = backupKeyPath(defaultFile, previous.version);
  const dir = dirname(defaultFile);
  const now = await loadMasterKey({ defaultFile });
  if (now.fingerprint === next.fingerprint) return backup;
  if (now.fingerprint !== previous.fingerprint) {
    throw new AppError(
      'conflict',
      `${defaultFile} holds neither the previous nor the new master key (fingerprint ${now.fingerprint}); not replaced`,
    );
  }
  if (existsSync(backup)) {
    const kept = await loadMasterKey({ defaultFile: backup });
    if (kept.fingerprint !== previous.fingerprint) {
      throw new AppError(
        'conflict',
        `${backup} holds another key (fingerprint ${kept.fingerprint}); not replaced`,
      );
    }
  } else {
    const temp = await writeKeyTemp(backup, keyText(previous));
    try {
      // link() never replaces an existing file: a backup is written once.
      await link(temp, backup);
    } finally {
      await unlink(temp).catch(() => undefined);
    }
    await syncDirectory(dir);
  }
  const temp = await writeKeyTemp(defaultFile, keyText(next));
  try {
    await rename(temp, defaultFile);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dir);
  return backup;
}
