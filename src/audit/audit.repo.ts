// Audit log storage: append inside the caller's write transaction, list, and read a consistent
// snapshot for verification. Entries reference objects by id; details never carry secrets.
import { type Kysely, sql } from 'kysely';
import type { KeyRing } from '../crypto/key-ring.js';
import type { Db, Dialect } from '../db/connect.js';
import { openDatabase } from '../db/connect.js';
import type { AuditRow, Database } from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import { AppError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { actorForStorage } from './actors.js';
import { type AuditAnchor, anchorMac, anchorMacValid, entryHash, GENESIS_HASH } from './chain.js';
import { type AuditDetails, assertNoSecret, parseDetails, serializeDetails } from './details.js';
import { sealPersonalDetails } from './person-keys.repo.js';

export interface NewAuditEntry {
  /** Who acted: a user id, `admin-token`, `cli:<name>`, `system`. */
  readonly actor: string;
  /** Dotted verb, e.g. `key.issue`, `credential.rotate`. */
  readonly action: string;
  readonly targetType?: string | null;
  /** The id of the object acted on, never a secret. */
  readonly targetId?: string | null;
  readonly details?: AuditDetails;
  readonly at: number;
}

export interface AuditEntry {
  readonly seq: number;
  readonly id: string;
  readonly at: number;
  readonly actor: string;
  readonly action: string;
  readonly targetType: string | null;
  readonly targetId: string | null;
  readonly details: AuditDetails;
  readonly hash: string;
}

export interface ListAuditOptions {
  /** Only entries at or after this time (epoch ms). */
  readonly since?: number;
  /** Only entries before this time (epoch ms, exclusive). */
  readonly until?: number;
  /** Only entries with exactly this actor, action, target type or target id. */
  readonly actor?: string;
  readonly action?: string;
  readonly targetType?: string;
  readonly targetId?: string;
  /** Only entries with seq greater than this (a paging cursor). */
  readonly afterSeq?: number;
  /** Page size; default 100, at most 1,000. */
  readonly limit?: number;
}

const ANCHOR_ID = 1;
export const VERIFY_BATCH_SIZE = 5000;

export interface AppendOptions {
  /**
   * Only `init` sets this: the first entry of a new installation, written without an anchor.
   * Every other append requires the anchor, so a deleted log is never silently restarted.
   */
  readonly genesis?: boolean;
  /** Seals the action's personal fields under their person's key before hashing (personal.ts). */
  readonly keys?: KeyRing;
}

/**
 * Appends one entry. Must run inside writeTransaction together with the change it records, so
 * both commit or neither does. The next seq and prev_hash come from the anchor (not max(seq)), so
 * deleted newest rows leave a visible gap instead of being silently re-used.
 */
export async function appendAudit(
  tx: Tx,
  dialect: Dialect,
  anchorKey: Buffer,
  entry: NewAuditEntry,
  options: AppendOptions = {},
): Promise<AuditRow> {
  assertNoSecret('actor', entry.actor);
  assertNoSecret('action', entry.action);
  assertNoSecret('target_type', entry.targetType);
  assertNoSecret('target_id', entry.targetId);
  const details = serializeDetails(
    options.keys ? await sealPersonalDetails(tx, options.keys, entry) : entry.details,
  );

  const actor = options.keys ? await actorForStorage(tx, entry.actor, entry.at) : entry.actor;
  const anchor = await lockAnchor(tx, dialect, anchorKey, options.genesis === true);
  const fields = {
    seq: anchor.seq + 1,
    id: newId('aud'),
    at: entry.at,
    actor,
    action: entry.action,
    target_type: entry.targetType ?? null,
    target_id: entry.targetId ?? null,
    details,
  };
  const row: AuditRow = { ...fields, prev_hash: anchor.hash, hash: entryHash(anchor.hash, fields) };
  try {
    await tx.insertInto('audit_log').values(row).execute();
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    throw new AppError(
      'audit_broken',
      `audit entry ${row.seq} already exists past the anchored head; run \`tollgate audit verify\``,
      { seq: row.seq },
      { cause: error },
    );
  }
  const head = { seq: row.seq, hash: row.hash, mac: anchorMac(anchorKey, row.seq, row.hash) };
  await tx
    .insertInto('audit_anchor')
    .values({ id: ANCHOR_ID, ...head })
    .onConflict((oc) => oc.column('id').doUpdateSet(head))
    .execute();
  return row;
}

/** The head an append leaves behind: what a witness records once the transaction has committed. */
export function headOf(row: AuditRow, anchorKey: Buffer): AuditAnchor {
  return { seq: row.seq, hash: row.hash, mac: anchorMac(anchorKey, row.seq, row.hash) };
}

/**
 * Reads (and on PostgreSQL row-locks) the anchor. A forged anchor is refused: extending it would
 * re-MAC the forgery and hide whatever it covers (e.g. truncated newest entries). A missing anchor
 * is refused too, except for the genesis append of `init`: an initialised installation always has
 * one, so its absence means the log was deleted, and a fresh chain would hide that.
 */
async function lockAnchor(
  tx: Tx,
  dialect: Dialect,
  anchorKey: Buffer,
  genesis: boolean,
): Promise<AuditAnchor> {
  const anchor = await readAnchor(tx, dialect, true);
  if (!anchor) {
    if (!genesis) {
      throw new AppError('audit_broken', 'the audit anchor is missing; run `tollgate audit verify`');
    }
    // init runs once per database (it refuses a database that holds an installation or its tables),
    // so no concurrent genesis append exists; rows here mean a log whose anchor was deleted.
    const any = await tx.selectFrom('audit_log').select('seq').limit(1).executeTakeFirst();
    if (any) throw new AppError('audit_broken', 'the audit anchor is missing; run `tollgate audit verify`');
    return { seq: 0, hash: GENESIS_HASH, mac: anchorMac(anchorKey, 0, GENESIS_HASH) };
  }
  if (!anchorMacValid(anchorKey, anchor)) {
    throw new AppError('audit_broken', 'the audit anchor does not verify; run `tollgate audit verify`');
  }
  return anchor;
}

/** Reads the anchor; `lock` row-locks it on PostgreSQL (SQLite writers are serialised by BEGIN IMMEDIATE). */
async function readAnchor(
  db: Kysely<Database>,
  dialect: Dialect,
  lock: boolean,
): Promise<AuditAnchor | null> {
  const query = db.selectFrom('audit_anchor').select(['seq', 'hash', 'mac']).where('id', '=', ANCHOR_ID);
  const row = await (lock && dialect === 'postgres' ? query.forUpdate() : query).executeTakeFirst();
  return row ?? null;
}

/**
 * Re-MACs the anchor under a new key (master-key rotation). The anchor must verify under the old
 * key first, so a rotation can never launder a forged anchor. Run inside writeTransaction.
 */
export async function rekeyAnchor(tx: Tx, dialect: Dialect, oldKey: Buffer, newKey: Buffer): Promise<void> {
  const anchor = await readAnchor(tx, dialect, true);
  if (!anchor) return;
  if (!anchorMacValid(oldKey, anchor)) {
    throw new AppError(
      'audit_broken',
      'the audit anchor does not verify under the current key; not re-keyed',
    );
  }
  await tx
    .updateTable('audit_anchor')
    .set({ mac: anchorMac(newKey, anchor.seq, anchor.hash) })
    .where('id', '=', ANCHOR_ID)
    .execute();
}

/**
 * Upgrades an anchor MAC'd with the legacy key (the bare master-derived audit key, before anchors
 * were bound to their installation) to the installation's key. Only an anchor that verifies under
 * the legacy key is upgraded, so a forged or missing anchor stays broken; one already in the new
 * format is left alone (two processes opening at once). Returns whether it rewrote the anchor.
 */
export async function upgradeLegacyAnchor(
  tx: Tx,
  dialect: Dialect,
  legacyKey: Buffer,
  anchorKey: Buffer,
): Promise<boolean> {
  const anchor = await readAnchor(tx, dialect, true);
  if (!anchor || anchorMacValid(anchorKey, anchor) || !anchorMacValid(legacyKey, anchor)) return false;
  await tx
    .updateTable('audit_anchor')
    .set({ mac: anchorMac(anchorKey, anchor.seq, anchor.hash) })
    .where('id', '=', ANCHOR_ID)
    .execute();
  return true;
}

/** The anchor as stored, without a lock (null when there is none). */
export function currentAnchor(db: Db): Promise<AuditAnchor | null> {
  return readAnchor(db.kysely, db.dialect, false);
}

/**
 * Entries in seq order, filtered and paged by seq in SQL (keyset paging: a page costs its own rows,
 * never the log before it).
 */
export async function listAudit(db: Kysely<Database>, opts: ListAuditOptions = {}): Promise<AuditRow[]> {
  const limit = Math.min(Math.max(Math.trunc(opts.limit ?? 100), 1), 1000);
  let query = db.selectFrom('audit_log').selectAll().orderBy('seq').limit(limit);
  if (opts.since !== undefined) query = query.where('at', '>=', opts.since);
  if (opts.until !== undefined) query = query.where('at', '<', opts.until);
  if (opts.afterSeq !== undefined) query = query.where('seq', '>', opts.afterSeq);
  if (opts.actor !== undefined) query = query.where('actor', '=', opts.actor);
  if (opts.action !== undefined) query = query.where('action', '=', opts.action);
  if (opts.targetType !== undefined) query = query.where('target_type', '=', opts.targetType);
  if (opts.targetId !== undefined) query = query.where('target_id', '=', opts.targetId);
  return query.execute();
}

/** Maps a stored row to the shape services and the HTTP layer use. */
export function toAuditEntry(row: AuditRow): AuditEntry {
  return {
    seq: row.seq,
    id: row.id,
    at: row.at,
    actor: row.actor,
    action: row.action,
    targetType: row.target_type,
    targetId: row.target_id,
    details: parseDetails(row.details),
    hash: row.hash,
  };
}

/** A consistent view of the log: the anchor and every row, in pages ordered by seq. */
export interface AuditSnapshot {
  readonly anchor: AuditAnchor | null;
  readonly pages: AsyncIterable<AuditRow[]>;
}

/**
 * Runs `consume` over one read snapshot of anchor and rows, so concurrent appends neither show up
 * as extra entries nor hide behind a stale anchor. Rows come in pages of `batchSize`; nothing holds
 * the whole log in memory. SQLite files are read through a separate connection, whose WAL snapshot
 * does not block the writers of this process; PostgreSQL uses a read-only repeatable-read transaction.
 */
export async function readAuditForVerify<T>(
  db: Db,
  consume: (snapshot: AuditSnapshot) => Promise<T>,
  batchSize: number = VERIFY_BATCH_SIZE,
): Promise<T> {
  const run = async (q: Kysely<Database>): Promise<T> => {
    const anchor = await readAnchor(q, db.dialect, false);
    return consume({ anchor, pages: pagesOf(q, batchSize) });
  };
  if (db.dialect === 'postgres') {
    return db.kysely
      .transaction()
      .setIsolationLevel('repeatable read')
      .setAccessMode('read only')
      .execute(run);
  }
  const reader = db.file ? openDatabase({ kind: 'sqlite', path: db.file }) : null;
  try {
    return await (reader ?? db).kysely.connection().execute(async (conn) => {
      await sql`begin`.execute(conn);
      try {
        return await run(conn);
      } finally {
        await sql`rollback`.execute(conn);
      }
    });
  } finally {
    await reader?.close();
  }
}

async function* pagesOf(db: Kysely<Database>, batchSize: number): AsyncGenerator<AuditRow[]> {
  // The first page has no lower bound, so tampered rows with seq <= 0 are seen too.
  let after: number | null = null;
  for (;;) {
    let query = db.selectFrom('audit_log').selectAll().orderBy('seq').limit(batchSize);
    if (after !== null) query = query.where('seq', '>', after);
    const page = await query.execute();
    if (page.length > 0) yield page;
    const last = page[page.length - 1];
    if (!last || page.length < batchSize) return;
    after = last.seq;
  }
}

function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('code' in error)) return false;
  // PostgreSQL unique_violation; better-sqlite3 extended result codes.
  return (
    error.code === '23505' ||
    error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    error.code === 'SQLITE_CONSTRAINT_UNIQUE'
  );
}
