// The audit service: record entries inside the caller's transaction, list them, verify the chain.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { KeyRing } from '../crypto/key-ring.js';
import type { MasterKey } from '../crypto/master-key.js';
import { deriveKey } from '../crypto/master-key.js';
import type { Db } from '../db/connect.js';
import type { AuditRow } from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import { AppError } from '../lib/errors.js';
import { actorForStorage, actorsForDisplay } from './actors.js';
import {
  type AuditEntry,
  appendAudit,
  currentAnchor,
  type ListAuditOptions,
  listAudit,
  type NewAuditEntry,
  readAuditForVerify,
  toAuditEntry,
  VERIFY_BATCH_SIZE,
} from './audit.repo.js';
import { type ChainBreak, createChainVerifier } from './chain.js';
import { parseDetails } from './details.js';
import { loadPersonKeys } from './person-keys.repo.js';
import { RESEAL_ACTION, resealedHeadHash, revealDetails, sealedSubjects } from './personal.js';
import { type AuditWitness, checkWitness, readWitness, type WitnessRead } from './witness.js';

export interface AuditServiceDeps {
  readonly db: Db;
  /** MAC key of the chain head: the installation's (installationAnchorKey over auditAnchorKey). */
  readonly anchorKey: Buffer;
  /** The installation id (meta org_id) that witness lines must name; required with a witness. */
  readonly installationId?: string;
  /** The witness file writer when `audit.witness_path` is set. */
  readonly witness?: AuditWitness | null;
  /**
   * The master keys (read at each use): open personal fields for listings and seal them on record;
   * without them entries list as stored.
   */
  readonly keys?: () => KeyRing;
  /** Rows per page while verifying (default 5,000). */
  readonly batchSize?: number;
}

export interface AuditService {
  /** Appends an entry in the caller's write transaction (the domain change and its entry commit together). */
  record(tx: Tx, entry: NewAuditEntry): Promise<AuditEntry>;
  list(opts?: ListAuditOptions): Promise<AuditEntry[]>;
  /**
   * Verifies the whole chain and its anchor, then (when configured) that every head in the witness
   * file exists in the chain; a failure names the first broken position.
   */
  verify(): Promise<AuditVerifyResult>;
  /**
   * Starts (or refreshes) the witness: verifies the chain and the witness file as it stands (a
   * missing file is allowed here, a disagreeing one is not) and writes the current head to it.
   */
  witness(): Promise<AuditVerifyResult>;
}

export type AuditVerifyResult =
  | {
      readonly ok: true;
      readonly entries: number;
      readonly head: { readonly seq: number; readonly hash: string };
      /** The newest witnessed seq that was checked; null when no witness is configured. */
      readonly witness: { readonly path: string; readonly seq: number } | null;
    }
  | {
      readonly ok: false;
      readonly entries: number;
      readonly firstBroken: ChainBreak;
      /** For witness failures: what disagreed, with the witness path. */
      readonly detail?: string;
    };

/** The anchor MAC key, derived from the master key for this purpose only. */
export function auditAnchorKey(master: MasterKey): Buffer {
  return deriveKey(master, 'audit-anchor');
}

export function createAuditService(deps: AuditServiceDeps): AuditService {
  // deps.anchorKey and deps.keys are read at each use: a running server's key changes when it learns a
  // rotation.
  const { db, installationId = '', witness = null, batchSize = VERIFY_BATCH_SIZE } = deps;
  async function verify(allowMissingWitness: boolean): Promise<AuditVerifyResult> {
    // The witness is read before the database snapshot: every head it holds was committed before
    // it was written, so the later snapshot contains it (the other order would see heads that
    // committed after the snapshot as "ahead").
    const read: WitnessRead | null = witness ? await readWitness(witness.path) : null;
    const wanted = new Map<number, string>();
    if (read?.kind === 'ok') for (const head of read.heads) wanted.set(head.seq, '');
    const epochs: AuditRow[] = [];
    const chain = await readAuditForVerify(
      db,
      async ({ anchor, pages }) => {
        const verifier = createChainVerifier(anchor, deps.anchorKey);
        // Stop reading at the verdict: a break near the start of a large log costs one page.
        for await (const page of pages) {
          for (const row of page) {
            if (wanted.has(row.seq)) wanted.set(row.seq, row.hash);
            if (row.action === RESEAL_ACTION) epochs.push(row);
            if (!verifier.push(row)) return verifier.finish();
          }
          // Hashing and SQLite reads are synchronous: let a serving process breathe between pages.
          await yieldToEventLoop();
        }
        return verifier.finish();
      },
      batchSize,
    );
    if (!chain.ok) return chain;
    if (!witness || !read || (allowMissingWitness && read.kind === 'missing')) {
      return { ...chain, witness: null };
    }
    // Heads witnessed before a reseal epoch inside its re-hashed range: the old head itself must be the
    // one the (verified, chained) epoch entry names; heads before it are vouched for by the epoch, which
    // re-chained only a log that verified at the time (reseal.ts).
    if (read.kind === 'ok') {
      const details = epochs.map((e) => parseDetails(e.details));
      for (const head of read.heads) {
        const expected = resealedHeadHash(details, head.seq, head.hash);
        if (expected !== undefined) wanted.set(head.seq, expected);
      }
    }
    const verdict = checkWitness(read, witness.path, installationId, deps.anchorKey, chain.head.seq, (seq) =>
      wanted.get(seq),
    );
    if (!verdict.ok) {
      return { ok: false, entries: chain.entries, firstBroken: verdict.firstBroken, detail: verdict.detail };
    }
    return { ...chain, witness: { path: witness.path, seq: verdict.seq } };
  }

  return {
    async record(tx, entry) {
      const keys = deps.keys?.();
      return toAuditEntry(await appendAudit(tx, db.dialect, deps.anchorKey, entry, keys ? { keys } : {}));
    },

    async list(opts = {}) {
      const ring = deps.keys?.();
      if (!ring) return (await listAudit(db.kysely, opts)).map(toAuditEntry);
      // A person named as actor is stored by id (actors.ts): filter by the stored form, show the name.
      const actor =
        opts.actor === undefined ? undefined : await actorForStorage(db.kysely, opts.actor, Date.now());
      const entries = (
        await listAudit(db.kysely, { ...opts, ...(actor === undefined ? {} : { actor }) })
      ).map(toAuditEntry);
      const actors = await actorsForDisplay(
        db.kysely,
        entries.map((e) => e.actor),
      );
      // Personal fields are shown opened (or `[purged]`); the stored row and its hash stay sealed.
      const keys = await loadPersonKeys(
        db.kysely,
        ring,
        entries.flatMap((e) => sealedSubjects(e.details)),
      );
      try {
        return entries.map((e) => ({
          ...e,
          actor: actors.get(e.actor) ?? e.actor,
          details: revealDetails(e.details, keys),
        }));
      } finally {
        for (const key of keys.values()) key?.fill(0);
      }
    },

    verify: () => verify(false),

    async witness() {
      if (!witness) {
        throw new AppError(
          'invalid_input',
          'no witness configured: set audit.witness_path (TOLLGATE_AUDIT_WITNESS_PATH)',
        );
      }
      const result = await verify(true);
      if (!result.ok) return result;
      const anchor = await currentAnchor(db);
      // Written only from a head that just verified; a newer head committed meanwhile is fine too.
      if (anchor) await witness.record(anchor);
      const failure = witness.lastError();
      if (failure) throw new AppError('invalid_config', failure);
      return verify(false);
    },
  };
}
