// Making a new or renamed directory entry durable (after write-then-rename, or creating a file).
import { open } from 'node:fs/promises';

/** fsync of a directory; best effort: not every platform or file system supports it, and the file's
 * own contents are synced by its writer. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => null);
  if (handle === null) return;
  try {
    await handle.sync();
  } catch {
    // not supported here
  } finally {
    await handle.close();
  }
}
