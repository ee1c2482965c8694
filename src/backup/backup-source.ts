// Reading a backup file as lines, plain or sealed under a passphrase, a bounded chunk at a time.
import { type FileHandle, open } from 'node:fs/promises';
import { AppError } from '../lib/errors.js';
import { damaged, MAX_LINE_BYTES } from './format.js';
import {
  createOpener,
  MAX_ENVELOPE_BYTES,
  type Opener,
  parseEnvelope,
  type SealedEnvelope,
  TAG_BYTES,
  unlockEnvelope,
} from './sealed.js';

const READ_BYTES = 256 * 1024;

export interface BackupSource {
  readonly file: string;
  /** The passphrase envelope of a sealed file; null for a plain one. */
  readonly sealed: { envelope: SealedEnvelope; prefix: Buffer; key: Buffer } | null;
}

/** Opens a backup file; asks for the passphrase (once) only when the file is sealed. */
export async function openBackupSource(
  file: string,
  askPassphrase: () => Promise<string>,
): Promise<BackupSource> {
  const handle = await openFile(file);
  try {
    const first = Buffer.alloc(MAX_ENVELOPE_BYTES);
    const { bytesRead } = await handle.read(first, 0, first.length, 0);
    const end = first.subarray(0, bytesRead).indexOf(0x0a);
    const envelope = end < 0 ? null : parseEnvelope(first.subarray(0, end).toString('utf8'));
    if (envelope === null) return { file, sealed: null };
    const prefix = Buffer.from(first.subarray(0, end + 1));
    const key = await unlockEnvelope(envelope, await askPassphrase());
    return { file, sealed: { envelope, prefix, key } };
  } finally {
    await handle.close();
  }
}

/** The file's (plaintext) lines without their newline; a sealed file's tag is checked at the end. */
export async function* backupLines(source: BackupSource): AsyncGenerator<string> {
  const handle = await openFile(source.file);
  try {
    const size = (await handle.stat()).size;
    let start = 0;
    let stop = size;
    let opener: Opener | null = null;
    if (source.sealed) {
      start = source.sealed.prefix.length;
      stop = size - TAG_BYTES;
      if (stop < start) throw damaged('the encrypted file is cut short');
      const tag = Buffer.alloc(TAG_BYTES);
      await handle.read(tag, 0, TAG_BYTES, stop);
      opener = createOpener(source.sealed.envelope, source.sealed.prefix, source.sealed.key, tag);
    }
    let rest = Buffer.alloc(0);
    // One line is held back, so a sealed file's tag is checked before its last line (the trailer).
    let held: string | null = null;
    const chunk = Buffer.alloc(READ_BYTES);
    for (let at = start; at < stop; ) {
      const { bytesRead } = await handle.read(chunk, 0, Math.min(READ_BYTES, stop - at), at);
      if (bytesRead === 0) break;
      at += bytesRead;
      const read = chunk.subarray(0, bytesRead);
      const plain = opener ? opener.update(read) : Buffer.from(read);
      let data = rest.length > 0 ? Buffer.concat([rest, plain]) : plain;
      for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a)) {
        if (held !== null) yield held;
        held = data.subarray(0, nl).toString('utf8');
        data = data.subarray(nl + 1);
      }
      if (data.length > MAX_LINE_BYTES) throw damaged('a line is longer than any row');
      rest = Buffer.from(data);
    }
    opener?.final();
    if (held !== null) yield held;
    // Every line ends with a newline; bytes after the last one are a cut-off line.
    if (rest.length > 0) yield rest.toString('utf8');
  } finally {
    await handle.close();
  }
}

async function openFile(file: string): Promise<FileHandle> {
  return open(file, 'r').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new AppError('not_found', `no such file: ${file}`);
    throw new AppError('invalid_input', `cannot read ${file}: ${error.code ?? 'error'}`);
  });
}
