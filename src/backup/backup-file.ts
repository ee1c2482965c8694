// Writing a backup file: a temporary 0600 file beside the target is written in chunks (optionally
// through the passphrase cipher), fsynced, then renamed into place; a failure leaves no file behind.
import { randomBytes } from 'node:crypto';
import { type FileHandle, link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { AppError, isAppError } from '../lib/errors.js';
import { syncDirectory } from '../lib/sync-directory.js';
import type { Sealer } from './sealed.js';

/** Bytes gathered before each write to the file. */
const CHUNK_BYTES = 256 * 1024;

export interface BackupSink {
  write(text: string): Promise<void>;
  /** Flushes, fsyncs and moves the file into place. */
  commit(): Promise<void>;
  /** Removes the temporary file. */
  discard(): Promise<void>;
}

export async function createBackupSink(
  file: string,
  options: { overwrite: boolean; sealer: Sealer | null },
): Promise<BackupSink> {
  const temp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle;
  try {
    handle = await open(temp, 'wx', 0o600);
    await handle.chmod(0o600); // exact, whatever the umask
  } catch (error) {
    throw cannotWrite(file, error);
  }
  const { sealer } = options;
  let pending: Buffer[] = [];
  let size = 0;
  const flush = async () => {
    if (size === 0) return;
    const plain = Buffer.concat(pending, size);
    pending = [];
    size = 0;
    await handle.write(sealer ? sealer.update(plain) : plain);
  };
  if (sealer) await handle.write(sealer.prefix);
  return {
    async write(text) {
      const bytes = Buffer.from(text, 'utf8');
      pending.push(bytes);
      size += bytes.length;
      if (size >= CHUNK_BYTES) await flush();
    },
    async commit() {
      try {
        await flush();
        if (sealer) await handle.write(sealer.final());
        await handle.sync();
        await handle.close();
        if (options.overwrite) await rename(temp, file);
        else await placeWithoutOverwrite(temp, file);
        await syncDirectory(dirname(file));
      } catch (error) {
        await handle.close().catch(() => undefined);
        await unlink(temp).catch(() => undefined);
        throw cannotWrite(file, error);
      }
    },
    async discard() {
      await handle.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
    },
  };
}

// A hard link fails rather than replace a file created meanwhile.
async function placeWithoutOverwrite(temp: string, file: string): Promise<void> {
  try {
    await link(temp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw alreadyExists(file);
    throw error;
  }
  await unlink(temp);
}

export function alreadyExists(file: string): AppError {
  return new AppError('conflict', `${file} already exists; use --force to overwrite it`);
}

function cannotWrite(file: string, error: unknown): AppError {
  if (isAppError(error)) return error;
  return new AppError(
    'invalid_input',
    `cannot write ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
  );
}
