// `tollgate audit export`: the whole log as JSON Lines for an outside reviewer. The first line is the
// proof (export-proof.ts: installation, time, the anchored head with its MAC, and a MAC under the
// master key's export key); then one stored row per line (seq, id, at in epoch ms, actor, action,
// target_type, target_id, details as its stored JSON text, prev_hash, hash), so anyone can recompute the
// chain: hash = hex SHA-256 of prev_hash + "\n" + JSON.stringify([seq, id, at, actor, action,
// target_type, target_id, details]), and check it reaches the proof's head (`audit verify --file`).
// Rows come page by page from one read snapshot (never the whole log in memory), the anchor from the
// same snapshot, and are checked against it on the way.
import { open, unlink } from 'node:fs/promises';
import type { Db } from '../db/connect.js';
import type { AuditRow } from '../db/schema.js';
import { AppError } from '../lib/errors.js';
import { readAuditForVerify } from './audit.repo.js';
import { anchorMacValid, createChainVerifier, type VerifyResult } from './chain.js';
import { EXPORT_FORMAT, EXPORT_VERSION, signProof } from './export-proof.js';

export interface AuditExport {
  readonly path: string;
  readonly entries: number;
  /** The chain's verdict over exactly the exported rows and the anchor of the same snapshot. */
  readonly verified: VerifyResult;
}

export interface ExportKeys {
  readonly db: Db;
  readonly orgId: string;
  /** The installation's anchor key (checks the anchor as the rows are written). */
  readonly anchorKey: Buffer;
  /** The master key's export key (signs the proof line; see exportProofKey). */
  readonly proofKey: Buffer;
}

/** Writes a new 0600 file (an existing one is never replaced: it may be the evidence of an earlier export). */
export async function exportAudit(keys: ExportKeys, path: string, now: number): Promise<AuditExport> {
  const { db, anchorKey } = keys;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'EEXIST') throw new AppError('conflict', `${path} already exists; choose another --out`);
    throw new AppError('invalid_input', `cannot write ${path}: ${code}`);
  }
  let written = false;
  try {
    await handle.chmod(0o600); // exact, whatever the umask
    const result = await readAuditForVerify(db, async ({ anchor, pages }) => {
      const verifier = createChainVerifier(anchor, anchorKey);
      const proof = signProof(keys.proofKey, {
        format: EXPORT_FORMAT,
        version: EXPORT_VERSION,
        installation: keys.orgId,
        exported_at: new Date(now).toISOString(),
        anchor: anchor ? { seq: anchor.seq, hash: anchor.hash, mac: anchor.mac } : null,
        anchor_verified: anchor !== null && anchorMacValid(anchorKey, anchor),
      });
      await handle.write(`${JSON.stringify(proof)}\n`);
      let checking = true;
      let entries = 0;
      for await (const page of pages) {
        // A broken chain is exported all the same: the file is the evidence.
        for (const row of page) if (checking) checking = verifier.push(row);
        await handle.write(`${page.map(exportLine).join('\n')}\n`);
        entries += page.length;
      }
      return { entries, verified: verifier.finish() };
    });
    await handle.sync();
    written = true;
    return { path, ...result };
  } finally {
    await handle.close();
    // A half-written export is worse than none: a reviewer could take it for the whole log.
    if (!written) await unlink(path).catch(() => undefined);
  }
}

/** One stored row, its fields in a fixed order whatever the database returned. */
function exportLine(row: AuditRow): string {
  return JSON.stringify({
    seq: row.seq,
    id: row.id,
    at: row.at,
    actor: row.actor,
    action: row.action,
    target_type: row.target_type,
    target_id: row.target_id,
    details: row.details,
    prev_hash: row.prev_hash,
    hash: row.hash,
  });
}
