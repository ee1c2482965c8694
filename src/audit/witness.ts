// The audit witness: every committed chain head, also written to a file outside the database
// (`audit.witness_path`), so that a database rewritten from a backup or replaced by another
// installation's is caught by `tollgate audit verify` even though its rows, anchor and meta agree.
//
// Format: one JSON line per head, `{"v":1,"installation":ID,"seq":N,"hash":H,"mac":M}`, appended
// and fsynced after the transaction that wrote the head committed (a head that rolled back is never
// witnessed). Past WITNESS_MAX_BYTES the file is compacted to its newest head: written to a temp
// file, fsynced, renamed over the witness, directory fsynced. The MAC is the anchor MAC under the
// installation's anchor key, so lines cannot be forged without the master key.
//
// Failure modes:
// - A crash between commit and witness write leaves the witness one (or a few) heads behind; verify
//   accepts that: every witnessed seq must be ≤ the database's head and its entry's hash must match.
// - A crash mid-write leaves a torn last line; it is ignored (the witness is then behind, see above).
// - Several processes (a server and CLI commands) append to one file; lines may land out of seq
//   order and a compaction may drop a line appended meanwhile: verify checks every line it holds,
//   so a dropped line only makes the witness older.
// - The file cannot be written (missing directory, permissions, full disk): the change still
//   commits and nothing is lost from the database; `record` never throws, it reports through
//   onError (the server logs an error, a CLI command prints a warning) and `tollgate doctor` /
//   `tollgate audit verify` report the stale or missing witness.
// - Whoever can write the witness file can replace it with an older genuine line: keep it where the
//   database's writers cannot write (another volume, host or an append-only store).
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { syncDirectory } from '../lib/sync-directory.js';
import { type AuditAnchor, anchorMacValid, type ChainBreak } from './chain.js';

/** Compaction bound: ~300 heads; the file is rewritten to the newest head past it. */
export const WITNESS_MAX_BYTES = 64 * 1024;

export interface WitnessHead extends AuditAnchor {
  readonly installation: string;
}

export interface AuditWitness {
  readonly path: string;
  /**
   * Writes a committed head (serialised with this process's other writes; an older head than one
   * already written is skipped). Never throws: a failure goes to onError and lastError.
   */
  record(head: AuditAnchor): Promise<void>;
  /**
   * Replaces the file by this head alone (as a compaction does): a master-key rotation re-MAC'd the
   * anchor, and lines MAC'd under the previous key would no longer verify. Never throws.
   */
  restart(head: AuditAnchor): Promise<void>;
  /** The last write failure's description (error code and path), or null after a success. */
  lastError(): string | null;
}

export function createWitness(
  path: string,
  installationId: string,
  onError: (message: string) => void,
  maxBytes: number = WITNESS_MAX_BYTES,
): AuditWitness {
  let queue: Promise<void> = Promise.resolve();
  let written = 0;
  let failure: string | null = null;

  async function write(head: AuditAnchor): Promise<void> {
    if (head.seq <= written) return;
    const line = lineOf(installationId, head);
    const existed = await stat(path).then(
      () => true,
      () => false,
    );
    const handle = await open(path, 'a', 0o600);
    let size: number;
    try {
      await handle.write(line);
      await handle.sync();
      size = (await handle.stat()).size;
    } finally {
      await handle.close();
    }
    if (!existed) await syncDirectory(dirname(path));
    if (size > maxBytes) await compact(path, line);
    written = head.seq;
  }

  const enqueue = (head: AuditAnchor, fn: () => Promise<void>): Promise<void> => {
    queue = queue.then(
      () =>
        fn().then(
          () => {
            failure = null;
          },
          (error: unknown) => {
            failure = `audit witness ${path} not written (${errnoCode(error)}); head #${head.seq} is only in the database`;
            onError(failure);
          },
        ),
      () => undefined,
    );
    return queue;
  };

  return {
    path,
    restart(head) {
      return enqueue(head, async () => {
        await compact(path, lineOf(installationId, head));
        written = head.seq;
      });
    },
    record(head) {
      return enqueue(head, () => write(head));
    },
    lastError: () => failure,
  };
}

function lineOf(installationId: string, head: AuditAnchor): string {
  return `${JSON.stringify({ v: 1, installation: installationId, seq: head.seq, hash: head.hash, mac: head.mac })}\n`;
}

/** Replaces the file by one holding only `line` (the newest head): temp file, fsync, rename, dir fsync. */
async function compact(path: string, line: string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.write(line);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    await syncDirectory(dirname(path));
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

export type WitnessRead =
  | { readonly kind: 'missing' }
  | { readonly kind: 'unreadable'; readonly detail: string }
  | { readonly kind: 'ok'; readonly heads: readonly WitnessHead[] };

const HEX64 = /^[0-9a-f]{64}$/;

/** Reads every head in the witness file; a torn last line (crash mid-write) is ignored. */
export async function readWitness(path: string): Promise<WitnessRead> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = errnoCode(error);
    return code === 'ENOENT' ? { kind: 'missing' } : { kind: 'unreadable', detail: code };
  }
  const lines = text.split('\n');
  const torn = lines.pop() ?? ''; // text after the last newline: empty, or a write cut short
  const heads: WitnessHead[] = [];
  for (const [i, line] of lines.entries()) {
    const head = parseHead(line);
    if (!head) return { kind: 'unreadable', detail: `line ${i + 1} is not a witness head` };
    heads.push(head);
  }
  if (heads.length === 0) {
    return { kind: 'unreadable', detail: torn === '' ? 'no head' : 'only a torn line' };
  }
  return { kind: 'ok', heads };
}

function parseHead(line: string): WitnessHead | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { v, installation, seq, hash, mac } = value as Record<string, unknown>;
  if (v !== 1 || typeof installation !== 'string' || typeof hash !== 'string' || typeof mac !== 'string')
    return null;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1 || !HEX64.test(hash)) return null;
  return { installation, seq, hash, mac };
}

/** What verify found about the witness when the chain itself verified. */
export type WitnessVerdict =
  | { readonly ok: true; readonly seq: number }
  | { readonly ok: false; readonly firstBroken: ChainBreak; readonly detail: string };

/**
 * Checks the witnessed heads against a database chain that verified: each must belong to this
 * installation, carry a MAC made with its anchor key, name a seq at or before the database's head
 * (one behind after a crash is fine) and match the hash of the entry at that seq.
 */
export function checkWitness(
  read: WitnessRead,
  path: string,
  installationId: string,
  anchorKey: Buffer,
  dbHeadSeq: number,
  hashAt: (seq: number) => string | undefined,
): WitnessVerdict {
  if (read.kind === 'missing') {
    return {
      ok: false,
      firstBroken: { index: dbHeadSeq, seq: null, reason: 'witness-missing' },
      detail: `${path} does not exist (run \`tollgate audit witness\` to start witnessing this log)`,
    };
  }
  if (read.kind === 'unreadable') {
    return {
      ok: false,
      firstBroken: { index: dbHeadSeq, seq: null, reason: 'witness-unreadable' },
      detail: `${path}: ${read.detail}`,
    };
  }
  const at = (head: WitnessHead, reason: ChainBreak['reason'], detail: string): WitnessVerdict => ({
    ok: false,
    firstBroken: { index: head.seq, seq: head.seq > dbHeadSeq ? null : head.seq, reason },
    detail: `${path}: ${detail}`,
  });
  let newest: WitnessHead | null = null;
  for (const head of read.heads) {
    if (head.installation !== installationId) {
      return at(
        head,
        'witness-mismatch',
        `witnessed installation ${head.installation} at #${head.seq}, but the database is installation ${installationId} (database replaced?)`,
      );
    }
    if (!anchorMacValid(anchorKey, head))
      return at(head, 'witness-mac-invalid', `head #${head.seq} has a forged MAC`);
    if (!newest || head.seq > newest.seq) newest = head;
  }
  if (newest && newest.seq > dbHeadSeq) {
    return at(
      newest,
      'witness-ahead',
      `witnessed head #${newest.seq} is past the database's head #${dbHeadSeq} (entries lost, or the database restored from an older copy)`,
    );
  }
  for (const head of read.heads) {
    if (hashAt(head.seq) !== head.hash) {
      return at(
        head,
        'witness-mismatch',
        `entry #${head.seq} differs from the witnessed one (history rewritten)`,
      );
    }
  }
  return { ok: true, seq: newest?.seq ?? 0 };
}

function errnoCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'error';
}
