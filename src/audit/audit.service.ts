// The audit service: record entries inside the caller's transaction, list them, verify the chain.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { MasterKey } from '../crypto/master-key.js';
import { deriveKey } from '../crypto/master-key.js';
import type { Db } from '../db/connect.js';
import type { Tx } from '../db/tx.js';
import {
  type AuditEntry,
  appendAudit,
  type ListAuditOptions,
  listAudit,
  type NewAuditEntry,
  readAuditForVerify,
  toAuditEntry,
  VERIFY_BATCH_SIZE,
} from './audit.repo.js';
import { createChainVerifier, type VerifyResult } from './chain.js';

export interface AuditServiceDeps {
  readonly db: Db;
  /** MAC key of the chain head; see auditAnchorKey. */
  readonly anchorKey: Buffer;
  /** Rows per page while verifying (default 5,000). */
  readonly batchSize?: number;
}

export interface AuditService {
  /** Appends an entry in the caller's write transaction (the domain change and its entry commit together). */
  record(tx: Tx, entry: NewAuditEntry): Promise<AuditEntry>;
  list(opts?: ListAuditOptions): Promise<AuditEntry[]>;
  /** Verifies the whole chain and its anchor; a failure names the first broken position. */
  verify(): Promise<VerifyResult>;
}

/** The anchor MAC key, derived from the master key for this purpose only. */
export function auditAnchorKey(master: MasterKey): Buffer {
  return deriveKey(master, 'audit-anchor');
}

export function createAuditService({
  db,
  anchorKey,
  batchSize = VERIFY_BATCH_SIZE,
}: AuditServiceDeps): AuditService {
  return {
    async record(tx, entry) {
      return toAuditEntry(await appendAudit(tx, db.dialect, anchorKey, entry));
    },

    async list(opts = {}) {
      return (await listAudit(db.kysely, opts)).map(toAuditEntry);
    },

    verify() {
      return readAuditForVerify(
        db,
        async ({ anchor, pages }) => {
          const verifier = createChainVerifier(anchor, anchorKey);
          // Stop reading at the verdict: a break near the start of a large log costs one page.
          for await (const page of pages) {
            for (const row of page) {
              if (!verifier.push(row)) return verifier.finish();
            }
            // Hashing and SQLite reads are synchronous: let a serving process breathe between pages.
            await yieldToEventLoop();
          }
          return verifier.finish();
        },
        batchSize,
      );
    },
  };
}
